"""spark-submit entry: score a dataset with an MLflow model (see sparkml_ops/models/batch_job.py).

    spark-submit --master local[2] jobs/batch_score.py --spec '{"model": "models:/m-...", "input": "data/",
        "output": "scored/", "format": "delta", "tracking_uri": "delta:/path/to/root"}'

The spec is a ``sparkml_ops.models.jobio.ScoreSpec`` as JSON. `sparkml-ops score` builds it
(and the packed env with --env packed) for you.
"""

import sys

from sparkml_ops.models.batch_job import main

if __name__ == "__main__":
    sys.exit(main())
