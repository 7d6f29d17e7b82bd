"""spark-submit entry: score a stream into a Delta table exactly once (see sparkml_ops/models/stream_job.py).

    spark-submit --master local[2] jobs/stream_score.py --model models:/churn/latest --input incoming/ \
        --output scored/ --reload-every 10 --tracking-uri delta:/path/to/root

`sparkml-ops score --stream` builds this command for you.
"""

import sys

from sparkml_ops.models.stream_job import main

if __name__ == "__main__":
    sys.exit(main())
