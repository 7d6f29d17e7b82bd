"""`sparkml-ops server` and `sparkml-ops ui`: MLflow's tracking server and web UI over a Delta root."""
