"""spark-submit entry: score a stream with an MLflow model (see sparkml_ops/models/stream_job.py).

    spark-submit --master local[2] jobs/stream_score.py --spec '{"model": "models:/churn/latest", "stream": true,
        "input": "incoming/", "output": "scored/", "reload_every": 10, "tracking_uri": "delta:/path/to/root"}'

The spec is a ``sparkml_ops.models.jobio.ScoreSpec`` as JSON. `sparkml-ops score --stream` builds it for you.
"""

import sys

from sparkml_ops.models.stream_job import main

if __name__ == "__main__":
    sys.exit(main())
