"""Quickstart pipeline: train a few scikit-learn models, log them to Delta, print the best.

Runs on the embedded default root (``~/.sparkml_ops/lake``) unless ``--root`` or
``MLFLOW_TRACKING_URI=delta:…`` says otherwise. Plain ``mlflow`` code: the only
sparkml_ops-specific line is the tracking URI.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from sparkml_ops import config

EXPERIMENT = "quickstart"


def train_and_log(c: float, max_iter: int, data: tuple, requirements: list[str]) -> str:
    x_train, x_test, y_train, y_test = data
    with mlflow.start_run(run_name=f"logreg-C{c}-it{max_iter}") as run:
        mlflow.log_params({"C": c, "max_iter": max_iter, "model": "LogisticRegression"})
        model = LogisticRegression(C=c, max_iter=max_iter).fit(x_train, y_train)
        for step in range(1, 6):  # a learning curve, to show metric history
            partial = LogisticRegression(C=c, max_iter=max(1, max_iter * step // 5)).fit(x_train, y_train)
            mlflow.log_metric("val_logloss", log_loss(y_test, partial.predict_proba(x_test)), step=step)
        mlflow.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)))
        mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x_test, model.predict(x_test)),
                                 input_example=x_test[:3], pip_requirements=requirements)
        return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", help="tracking root (path or delta: URI)")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short learning curves on purpose
    uri = config.tracking_uri(args.root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    x, y = make_classification(n_samples=2_000, n_features=20, n_informative=8, random_state=7)
    data = train_test_split(x, y, test_size=0.25, random_state=7)
    # Inferring requirements spawns a Python per model: do it once for the whole sweep.
    requirements = mlflow.sklearn.get_default_pip_requirements()
    for c, max_iter in itertools.product([0.01, 0.1, 1.0], [20, 200]):
        train_and_log(c, max_iter, data, requirements)

    best = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="params.model = 'LogisticRegression'",
                              order_by=["metrics.accuracy DESC", "metrics.val_logloss ASC"], max_results=1)
    row = best.iloc[0]
    model = mlflow.sklearn.load_model(f"runs:/{row.run_id}/model")
    print(f"tracking URI : {uri}")
    print(f"best run     : {row.run_id} ({row['tags.mlflow.runName']})")
    print(f"params       : C={row['params.C']} max_iter={row['params.max_iter']}")
    print(f"accuracy     : {row['metrics.accuracy']:.4f}")
    print(f"reloaded     : {type(model).__name__} predicts {model.predict(data[1][:5]).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
