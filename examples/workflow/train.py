"""Step 2: fit a logistic regression with one regularisation strength; log accuracy and the model."""

import argparse

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--reg", type=float, required=True)
args = parser.parse_args()

frame = pd.read_parquet(args.data)
features = frame.drop(columns=["label"])
x_train, x_test, y_train, y_test = train_test_split(features, frame["label"], test_size=0.25, random_state=0)
model = LogisticRegression(C=1.0 / args.reg, max_iter=200).fit(x_train, y_train)
mlflow.log_metric("accuracy", float(model.score(x_test, y_test)))
mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x_test, model.predict(x_test)))
