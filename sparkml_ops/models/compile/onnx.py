"""ONNX graphs of linear models, tree ensembles and their preprocessing → the same trees and SQL idioms.

The graph is read with the ``onnx`` package, node by node in its (topological) order, keeping
every tensor as one SQL expression per column. What the operators compute follows
onnxruntime's CPU kernels:

- the input is a float32 matrix made from the signature's double columns (``float32(x)``);
- ``TreeEnsemble*`` compare float32 features with float32 thresholds by the node's mode
  (``BRANCH_LEQ``, ``BRANCH_LT``, ``BRANCH_GTE``, ``BRANCH_GT``); NaN takes the true branch
  only where ``nodes_missing_value_tracks_true`` says so; leaf weights are summed per class
  or target (``AVERAGE`` divides by the number of trees), ``base_values`` added, then
  ``post_transform`` (``NONE``, ``LOGISTIC``, ``SOFTMAX``);
- ``Linear*`` are ``x·coefficientsᵀ + intercepts`` then ``post_transform``; a classifier's
  label is the first maximal score, or ``score > 0`` with one score;
- ``Scaler`` and ``Normalizer`` compute in float32, as onnxruntime does.

onnxruntime's own sums and exponentials run in float32 (and its matrix product in blocks),
so compiled scores match its output to float32 precision, not bit for bit; the thresholds,
and therefore the leaves reached, match exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import Feature, NotCompilable
from sparkml_ops.models.compile.trees import Ensemble, Tree

MODELS = ("LinearClassifier", "LinearRegressor", "TreeEnsembleClassifier", "TreeEnsembleRegressor")
STEPS = ("Scaler", "Normalizer", "OneHotEncoder", "Cast", "Identity", "Concat", "ArrayFeatureExtractor",
         "Reshape", "Flatten")


@dataclass(frozen=True)
class Columns:
    """A 2-D tensor as one DOUBLE (or STRING) SQL expression per column.

    ``rounded``: the expressions already hold float32 values; otherwise the tensor's value
    is ``float32(expression)`` (the model input: the UDF makes a float32 matrix of doubles).
    """

    exprs: tuple[str, ...]
    rounded: bool = True
    kind: str = "num"  # "num" | "str"

    def float32(self) -> list[str]:
        """The float32 values, as DOUBLE expressions."""
        return list(self.exprs) if self.rounded else [f"CAST(CAST({x} AS FLOAT) AS DOUBLE)" for x in self.exprs]


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _f32(value: float) -> str:
    """A float32 constant in float arithmetic."""
    return f"CAST({q.double(float(np.float32(value)))} AS FLOAT)"


def _labels(attrs: dict[str, Any], prefix: str) -> list[Any]:
    strings = attrs.get(f"{prefix}_strings")
    if strings:
        return [_text(s) for s in strings]
    return [int(v) for v in attrs.get(f"{prefix}_ints", attrs.get(f"{prefix}_int64s", []))]


def _scaler(x: Columns, attrs: dict[str, Any]) -> Columns:
    n = len(x.exprs)
    offset = np.broadcast_to(np.asarray(attrs.get("offset", [0.0]), dtype=np.float32), n)
    scale = np.broadcast_to(np.asarray(attrs.get("scale", [1.0]), dtype=np.float32), n)
    return Columns(tuple(f"CAST(((CAST({v} AS FLOAT) - {_f32(o)}) * {_f32(s)}) AS DOUBLE)"
                         for v, o, s in zip(x.float32(), offset, scale, strict=True)))


def _normalizer(x: Columns, attrs: dict[str, Any]) -> Columns:
    norm = _text(attrs.get("norm", "MAX"))
    xs = [f"CAST({v} AS FLOAT)" for v in x.float32()]
    if norm == "MAX":
        total = f"greatest({', '.join(xs)})"
    elif norm == "L1":
        total = "(" + " + ".join(f"abs({v})" for v in xs) + ")"
    elif norm == "L2":
        total = "CAST(sqrt(" + " + ".join(f"({v} * {v})" for v in xs) + ") AS FLOAT)"
    else:
        raise NotCompilable(f"cannot compile: Normalizer with norm {norm}")
    return Columns(tuple(f"CAST(({v} / {total}) AS DOUBLE)" for v in xs))


def _one_hot(x: Columns, attrs: dict[str, Any]) -> Columns:
    cats = _labels(attrs, "cats")
    if len(x.exprs) != 1:
        raise NotCompilable(f"cannot compile: OneHotEncoder over {len(x.exprs)} columns (one column only)")
    value = x.exprs[0] if x.kind == "str" else f"CAST({x.float32()[0]} AS BIGINT)"
    literals = [q.string(c) if isinstance(c, str) else str(int(c)) for c in cats]
    out = [f"CASE WHEN {value} = {lit} THEN 1D ELSE 0D END" for lit in literals]
    if int(attrs.get("zeros", 1)) == 0:  # an unknown category is an error there: here too
        message = q.string("OneHotEncoder: unknown category")
        out[0] = (f"CASE WHEN {value} = {literals[0]} THEN 1D WHEN {value} IN ({', '.join(literals)}) THEN 0D "
                  f"ELSE CAST(raise_error({message}) AS DOUBLE) END")
    return Columns(tuple(out))


def _transform(kind: str, ops: Any, scores: list[Any]) -> list[Any]:
    if kind == "NONE":
        return scores
    if kind == "LOGISTIC":
        return [ops.sigmoid(s) for s in scores]
    if kind == "SOFTMAX":
        return ops.softmax(scores)
    raise NotCompilable(f"cannot compile: post_transform {kind}")


@dataclass
class _Model:
    """The model node's outputs, built from its scores by ``ops`` (text or Columns)."""

    names: tuple[str, ...]  # the node's output tensor names: (label, probabilities) or (variable,)
    labels: list[Any] | None
    transform: str
    binary_single: bool = False  # one score, two classes: label by score > cut, probabilities [1 - p, p]
    cut: float = 0.0

    def outputs(self, ops: Any, scores: list[Any]) -> dict[str, Any]:
        """Output name → expression (a label, a single value) or list of expressions (a vector)."""
        if self.labels is None:
            values = _transform(self.transform, ops, scores)
            return {self.names[0]: values[0] if len(values) == 1 else values}
        if self.binary_single:
            score = ops.chain_sum([scores[0], ops.const(-self.cut)]) if self.cut else scores[0]
            label = ops.positive_label(score, self.labels, strict=True)
            p = _transform(self.transform, ops, scores)[0]
            return {self.names[0]: label, self.names[1]: [ops.one_minus(p), p]}
        return {self.names[0]: ops.argmax_label(scores, self.labels),
                self.names[1]: _transform(self.transform, ops, scores)}


def _after(ops: Any, node, values: dict[str, Any]) -> None:
    """A step on the model's outputs (glue skl2onnx adds: Identity, Cast, an L1 Normalizer of probabilities)."""
    x = values[node.input[0]]
    if node.op_type == "Normalizer":
        total = ops.chain_sum([ops.abs(v) for v in x])
        x = [ops.ratio(v, total) for v in x]
    values[node.output[0]] = x


def _check_after(node) -> None:
    if node.op_type in ("Identity", "Cast"):
        return
    if node.op_type == "Normalizer" and _text(_attrs(node).get("norm", "")) == "L1":
        return
    raise NotCompilable(f"cannot compile: {node.op_type} on the model's outputs (Identity, Cast and an L1 "
                        "Normalizer do)")


def _linear(node, attrs: dict[str, Any], x: Columns) -> tuple[_Model, list[str]]:
    xs = x.float32()
    coef = np.asarray(attrs["coefficients"], dtype=np.float32).astype(np.float64)
    classifier = node.op_type == "LinearClassifier"
    intercepts = np.asarray(attrs.get("intercepts", []), dtype=np.float32).astype(np.float64)
    targets = len(intercepts) if classifier else int(attrs.get("targets", 1))
    if len(intercepts) == 0:
        intercepts = np.zeros(targets)
    coef = coef.reshape(targets, len(xs))
    scores = [q.dot(xs, coef[k], float(intercepts[k])) for k in range(targets)]
    transform = _text(attrs.get("post_transform", "NONE"))
    if not classifier:
        return _Model(tuple(node.output[:1]), None, transform), scores
    labels = _labels(attrs, "classlabels")
    single = targets == 1
    if single and len(labels) != 2:
        labels = [0, 1]
    return _Model(tuple(node.output[:2]), labels, transform, binary_single=single), scores


def _tree_ensemble(node, attrs: dict[str, Any], x: Columns) -> tuple[_Model, Ensemble]:
    classifier = node.op_type == "TreeEnsembleClassifier"
    prefix = "class" if classifier else "target"
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    modes = [_text(m) for m in attrs["nodes_modes"]]
    if "nodes_values_as_tensor" in attrs:
        thresholds = np.asarray(attrs["nodes_values_as_tensor"], dtype=np.float64)
    else:
        thresholds = np.asarray(attrs["nodes_values"], dtype=np.float32).astype(np.float64)
    # float32(x) <= t, and float32(x) < t as float32(x) <= the double below t: both as x <= bound
    at_most = q.doubles(q.float32_le_bounds(thresholds))
    below = q.doubles(q.float32_le_bounds(np.nextafter(thresholds, -np.inf)))
    features = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
    true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
    tracks = np.asarray(attrs.get("nodes_missing_value_tracks_true", [0] * len(modes)), dtype=np.int64)
    w_tree = np.asarray(attrs[f"{prefix}_treeids"], dtype=np.int64)
    w_node = np.asarray(attrs[f"{prefix}_nodeids"], dtype=np.int64)
    w_id = np.asarray(attrs[f"{prefix}_ids"], dtype=np.int64)
    w_value = np.asarray(attrs[f"{prefix}_weights"], dtype=np.float32).astype(np.float64)
    labels = _labels(attrs, "classlabels") if classifier else None
    width = len(labels) if labels is not None else int(attrs.get("n_targets", int(w_id.max()) + 1))
    # two classes and weights for one: onnxruntime's "binary case": the sum s is the positive class's
    # probability, the label is s > 0.5 (for non-negative weights), probabilities [1 - s, s]
    one_class = classifier and width == 2 and set(w_id.tolist()) == {0}
    if one_class:
        if (w_value < 0).any() or len(attrs.get("base_values", [])) or \
                _text(attrs.get("post_transform", "NONE")) != "NONE":
            raise NotCompilable("cannot compile: TreeEnsembleClassifier with weights for one class and negative "
                                "weights, base values or a post_transform")
        width = 1
    for mode in set(modes) - {"LEAF", "BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT"}:
        raise NotCompilable(f"cannot compile: TreeEnsemble node mode {mode}")
    xs = list(x.exprs)
    trees = []
    for tree in sorted(set(tree_ids.tolist())):
        rows = np.flatnonzero(tree_ids == tree)
        index = {int(node_ids[r]): i for i, r in enumerate(rows)}
        count = len(rows)
        left, right = np.full(count, -1), np.full(count, -1)
        feature, missing = np.full(count, -1), np.zeros(count, dtype=bool)
        text = [""] * count
        for i, r in enumerate(rows):
            mode = modes[r]
            if mode == "LEAF":
                continue
            t, f = int(index[int(true_ids[r])]), int(index[int(false_ids[r])])
            feature[i] = features[r]
            if mode in ("BRANCH_LEQ", "BRANCH_LT"):  # x <= b is the true branch
                left[i], right[i], missing[i] = t, f, bool(tracks[r])
            else:  # x <= b is the false branch
                left[i], right[i], missing[i] = f, t, not tracks[r]
            text[i] = at_most[r] if mode in ("BRANCH_LEQ", "BRANCH_GT") else below[r]
        values = np.zeros((count, width))
        for r in np.flatnonzero(w_tree == tree):
            values[index[int(w_node[r])], int(w_id[r])] += w_value[r]
        trees.append(Tree(left, right, feature, text, missing, xs, values))
    base = np.asarray(attrs.get("base_values", np.zeros(width)), dtype=np.float32).astype(np.float64)
    average = _text(attrs.get("aggregate_function", "SUM"))
    if average not in ("SUM", "AVERAGE"):
        raise NotCompilable(f"cannot compile: TreeEnsembleRegressor with aggregate_function {average}")
    n = float(len(trees))
    model = _Model(tuple(node.output[:2] if classifier else node.output[:1]), labels,
                   _text(attrs.get("post_transform", "NONE")), binary_single=one_class, cut=0.5)

    def head(ops, values):
        scores = []
        for k in range(width):
            total = ops.chain_sum([t[k] for t in values])
            if average == "AVERAGE":
                total = ops.divide(total, n)
            scores.append(ops.chain_sum([total, ops.const(base[k])]) if base[k] != 0.0 else total)
        return scores
    return model, Ensemble(tuple(trees), head)


def predict(model_proto, features: Sequence[Feature], outputs: Sequence[str]) -> str | Ensemble:
    """The graph's ``outputs`` (one expression, or a struct of several) over the signature's features."""
    graph = model_proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise NotCompilable(f"cannot compile: an ONNX graph with {len(inputs)} inputs (one matrix input only)")
    bad = [f.sql for f in features if f.kind != "num"]
    if bad:
        raise NotCompilable("cannot compile: ONNX inputs must be numeric columns")
    if inputs[0].type.tensor_type.elem_type != 1:
        raise NotCompilable("cannot compile: an ONNX graph whose input is not a float tensor")
    tensors: dict[str, Columns] = {inputs[0].name: Columns(tuple(f.sql for f in features), rounded=False)}
    after: list[Any] = []  # steps on the model node's outputs, in order
    from_model: set[str] = set()
    model: tuple[_Model, Any] | None = None
    needed = _needed(graph, outputs)
    for node in graph.node:
        if not set(node.output) & needed:
            continue
        op = node.op_type
        attrs = _attrs(node)
        if node.input and node.input[0] in from_model:
            _check_after(node)
            after.append(node)
            from_model |= set(node.output)
            continue
        args = [tensors.get(i) for i in node.input if i not in initializers]
        if any(a is None for a in args):
            raise NotCompilable(f"cannot compile: {op} (its input comes from a step that does not compile)")
        x = args[0]
        assert x is not None
        if op in MODELS:
            if model is not None:
                raise NotCompilable(f"cannot compile: {op} after another model in the same graph")
            model = _linear(node, attrs, x) if op.startswith("Linear") else _tree_ensemble(node, attrs, x)
            from_model |= set(node.output)
            continue
        if op == "Scaler":
            out = _scaler(x, attrs)
        elif op == "Normalizer":
            out = _normalizer(x, attrs)
        elif op == "OneHotEncoder":
            out = _one_hot(x, attrs)
        elif op in ("Identity", "Reshape", "Flatten"):
            out = x
        elif op == "Cast":
            out = _cast(x, int(attrs["to"]))
        elif op == "Concat":
            out = Columns(tuple(e for a in args if a is not None for e in a.float32()))
        elif op == "ArrayFeatureExtractor":
            out = Columns(tuple(x.exprs[int(i)] for i in _constant(graph, node.input[1])), x.rounded, x.kind)
        else:
            raise NotCompilable(f"cannot compile: {op} (compilable ONNX operators: {', '.join(MODELS + STEPS)})")
        tensors[node.output[0]] = out
    if model is None:
        raise NotCompilable("cannot compile: the ONNX graph has no linear or tree-ensemble model node")
    node_model, body = model
    missing = [o for o in outputs if o not in from_model]
    if missing:
        raise NotCompilable(f"cannot compile: ONNX outputs {missing} do not come from the model node")

    def finish(ops, scores):
        values = node_model.outputs(ops, scores)
        for node in after:
            _after(ops, node, values)
        picked = {name: ops.array_of(values[name]) if isinstance(values[name], list) else values[name]
                  for name in outputs}
        return picked[outputs[0]] if len(outputs) == 1 else ops.struct(picked)
    if isinstance(body, Ensemble):
        return Ensemble(body.trees, lambda ops, values: finish(ops, body.head(ops, values)))
    return finish(q.TEXT, body)


def _cast(x: Columns, to: int) -> Columns:
    if to == 1:  # FLOAT
        return Columns(tuple(x.float32()))
    if to == 11:  # DOUBLE
        return Columns(tuple(x.float32()), True, x.kind)
    if to == 7:  # INT64: truncation toward zero
        return Columns(tuple(f"CAST(CAST({v} AS BIGINT) AS DOUBLE)" for v in x.float32()))
    raise NotCompilable(f"cannot compile: Cast to ONNX type {to}")


def _constant(graph, name: str) -> list[int]:
    from onnx import numpy_helper

    for t in graph.initializer:
        if t.name == name:
            return [int(v) for v in np.ravel(numpy_helper.to_array(t))]
    raise NotCompilable(f"cannot compile: ArrayFeatureExtractor with computed indices ({name})")


def _needed(graph, outputs: Sequence[str]) -> set[str]:
    """The tensors the wanted outputs depend on (nodes for other outputs, e.g. ZipMap, are left out)."""
    producers = {o: n for n in graph.node for o in n.output}
    needed, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producers.get(name)
        if node is not None:
            todo += list(node.input)
    return needed
