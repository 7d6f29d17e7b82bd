"""spark-submit entry: score a dataset with an MLflow model (see sparkml_ops/models/batch_job.py).

    spark-submit --master local[2] jobs/batch_score.py --model models:/m-... --input data/ \
        --output scored/ --format delta --tracking-uri delta:/path/to/root

`sparkml-ops score` builds this command for you (and the packed env with --env packed).
"""

import sys

from sparkml_ops.models.batch_job import main

if __name__ == "__main__":
    sys.exit(main())
