"""Pipeline steps in front of a model: StandardScaler, MinMaxScaler, OneHotEncoder, ColumnTransformer.

Each step maps the list of columns it receives (SQL expressions) to the list it outputs,
with scikit-learn's float64 arithmetic in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import Feature, NotCompilable
from sparkml_ops.models.compile.linear import numeric

Step = Callable[[object, Sequence[Feature]], list[Feature]]


def standard_scaler(model, features: Sequence[Feature]) -> list[Feature]:
    xs = numeric(features, "StandardScaler")
    out = []
    for j, x in enumerate(xs):
        if model.with_mean:
            x = f"({x} - {q.double(model.mean_[j])})"
        if model.with_std:
            x = f"({x} / {q.double(model.scale_[j])})"
        out.append(Feature(x))
    return out


def min_max_scaler(model, features: Sequence[Feature]) -> list[Feature]:
    xs = numeric(features, "MinMaxScaler")
    low, high = (q.double(v) for v in model.feature_range)
    out = []
    for j, x in enumerate(xs):
        x = f"(({x} * {q.double(model.scale_[j])}) + {q.double(model.min_[j])})"
        if model.clip:
            x = f"least(greatest({x}, {low}), {high})"
        out.append(Feature(x))
    return out


def _category(value, feature: Feature) -> str:
    if feature.kind == "str":
        return q.string(str(value))
    if isinstance(value, str):
        raise NotCompilable(f"OneHotEncoder has string category {value!r} for a numeric input")
    return q.double(float(value))


def one_hot_encoder(model, features: Sequence[Feature]) -> list[Feature]:
    if getattr(model, "_infrequent_enabled", False):
        raise NotCompilable("OneHotEncoder with infrequent categories does not compile")
    drops = getattr(model, "drop_idx_", None)
    out = []
    for j, (feature, categories) in enumerate(zip(features, model.categories_, strict=True)):
        if any(isinstance(c, float) and np.isnan(c) for c in categories) or any(c is None for c in categories):
            raise NotCompilable("OneHotEncoder with a missing-value category does not compile")
        drop = None if drops is None or drops[j] is None else int(drops[j])
        literals = [_category(c, feature) for c in categories]
        kept = [i for i in range(len(categories)) if i != drop]
        for n, i in enumerate(kept):
            hit = f"{feature.sql} = {literals[i]}"
            if n == 0 and model.handle_unknown == "error":
                # scikit-learn refuses an unknown category: so does the compiled expression
                known = ", ".join(literals)
                message = q.string(f"OneHotEncoder: unknown category in input {j}")
                out.append(Feature(f"CASE WHEN {hit} THEN 1D WHEN {feature.sql} IN ({known}) THEN 0D "
                                   f"ELSE CAST(raise_error({message}) AS DOUBLE) END"))
            else:
                out.append(Feature(f"CASE WHEN {hit} THEN 1D ELSE 0D END"))
    return out


def column_transformer(model, features: Sequence[Feature], step: Callable[[object, Sequence[Feature]], list[Feature]]
                       ) -> list[Feature]:
    """The transformers' outputs side by side, in ``transformers_`` order (remainder last)."""
    indices = model._transformer_to_input_indices
    out: list[Feature] = []
    for name, transformer, _columns in model.transformers_:
        picked = [features[i] for i in indices.get(name, [])]
        if not picked or (isinstance(transformer, str) and transformer == "drop"):
            continue
        if isinstance(transformer, str) and transformer == "passthrough":
            out += picked
        else:
            out += step(transformer, picked)
    return out
