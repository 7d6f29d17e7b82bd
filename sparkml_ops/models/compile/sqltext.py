"""Spark SQL text for compiled models: exact literals and the few numeric idioms models need.

Every number is written so that Spark reads back the very same double (``repr`` of a
float64 is its shortest round-trip form; the ``D`` suffix makes it a DOUBLE literal).
Non-finite values, which SQL has no literal for, are casts of strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def double(value: float) -> str:
    """A DOUBLE literal equal to ``value`` bit for bit."""
    x = float(value)
    if math.isnan(x):
        return "CAST('NaN' AS DOUBLE)"
    if math.isinf(x):
        return "CAST('Infinity' AS DOUBLE)" if x > 0 else "CAST('-Infinity' AS DOUBLE)"
    text = repr(x)
    return f"({text}D)" if text.startswith("-") else f"{text}D"


def doubles(values) -> list[str]:
    """:func:`double` for a whole array, fast (compiling a large forest formats 10^5–10^6 numbers)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    out = [f"{r}D" for r in map(repr, arr.tolist())]
    for i in np.flatnonzero(~np.isfinite(arr) | (arr < 0)).tolist():
        out[i] = double(arr[i])
    return out


def float32_le_bounds(thresholds) -> np.ndarray:
    """Per threshold ``t``, the largest double ``b`` with ``float32(x) <= t`` exactly when ``x <= b``.

    Trees that cast their input to float32 before comparing (scikit-learn's, ONNX's) then
    compare the double input with ``b``: no cast per node in the SQL or the generated code.
    ``float32(x) <= t`` holds when ``float32(x) <= c``, ``c`` the largest float32 not above
    ``t``; ``x`` rounds to ``c`` or below up to the midpoint ``m`` between ``c`` and the next
    float32, and at ``m`` itself only when ``c``'s last mantissa bit is even (round half to
    even), so ``b`` is ``m`` or the double just below it. NaN compares false either way.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        c = t.astype(np.float32)
        c = np.where(c.astype(np.float64) > t, np.nextafter(c, np.float32(-np.inf)), c)
        up = np.nextafter(c, np.float32(np.inf)).astype(np.float64)
        up = np.where(np.isposinf(up) & np.isfinite(c), 2.0**128, up)  # above FLT_MAX rounds to inf
        m = (c.astype(np.float64) + up) / 2.0  # exact: one more bit than a float32 mantissa
        even = (c.view(np.int32) & 1) == 0
        return np.where(even, m, np.nextafter(m, -np.inf))


def ref(text: str) -> str:
    """An input reference inside a larger expression: parenthesised unless it is one quoted name."""
    if len(text) > 1 and text[0] == text[-1] == "`" and "`" not in text[1:-1].replace("``", ""):
        return text
    return f"({text})"


def string(value: str) -> str:
    """A string literal (quotes and backslashes escaped)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def label(value) -> str:
    """A class label literal: BIGINT for integers, DOUBLE for floats, STRING otherwise, BOOLEAN for bools."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return f"CAST({int(value)} AS BIGINT)"
    if isinstance(value, (float, np.floating)):
        return double(float(value))
    return string(str(value))


def quote(name: str) -> str:
    """A column name as a quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


SUM_CHUNK = 64  # longest run of terms added one after another (see chain_sum)


def chunks(terms: Sequence, size: int = SUM_CHUNK) -> list:
    """``terms`` in runs of ``size``: a sum of hundreds of trees as one chain is an expression
    hundreds of levels deep, and Spark's analyzer recurses through it until the stack overflows."""
    return [terms[i:i + size] for i in range(0, len(terms), size)]


def chain_sum(terms: Sequence[str]) -> str:
    """``(t0 + t1 + t2 + …)``: Spark's ``+`` is left-associative, so this adds left to right, the
    order numpy's accumulation loops use. (Nested parentheses would say the same but make
    Spark's SQL parser backtrack exponentially on long sums.) Past :data:`SUM_CHUNK` terms it
    adds runs of that many, then the runs' sums: the same terms, a few rounding steps apart
    from one long chain (scikit-learn's forests and boosting of that size differ from it by
    about 1e-15 relative)."""
    if not terms:
        return "0D"
    if len(terms) > SUM_CHUNK:
        return chain_sum([chain_sum(run) for run in chunks(terms)])
    return "(" + " + ".join(terms) + ")" if len(terms) > 1 else terms[0]


def dot(features: Sequence[str], coef: Sequence[float] | np.ndarray, intercept: float) -> str:
    """``Σ x_j·w_j + b`` (zero weights left out: they add exactly 0 to a finite sum)."""
    terms = [f"({x} * {double(w)})" for x, w in zip(features, coef, strict=True) if float(w) != 0.0]
    return chain_sum([*terms, double(intercept)])


def sigmoid(x: str) -> str:
    """``1 / (1 + exp(-x))``, in float64 as scipy's ``expit``."""
    return f"(1D / (1D + exp(-({x}))))"


def softmax(xs: Sequence[str]) -> list[str]:
    """scikit-learn's softmax: subtract the row maximum, exponentiate, divide by the sum."""
    top = f"greatest({', '.join(xs)})"
    exps = [f"exp({x} - {top})" for x in xs]
    total = chain_sum(exps)
    return [f"({e} / {total})" for e in exps]


def argmax_label(scores: Sequence[str], labels: Sequence) -> str:
    """The label of the first maximal score (numpy's ``argmax`` tie rule), each score written once.

    ``array_max`` over ``(score, -index)`` structs picks the largest score and, among equal
    ones, the smallest index; Spark orders NaN above every number, as numpy's argmax picks
    the first NaN.
    """
    if len(scores) == 1:
        return label(labels[0])
    pairs = ", ".join(f"named_struct('s', {s}, 'i', {-j})" for j, s in enumerate(scores))
    names = f"array({', '.join(label(v) for v in labels)})"
    return f"element_at({names}, 1 - array_max(array({pairs})).i)"


def positive_label(score: str, labels: Sequence, *, strict: bool) -> str:
    """Binary decision: ``labels[1]`` when ``score > 0`` (``>= 0`` unless ``strict``), else ``labels[0]``."""
    op = ">" if strict else ">="
    return f"CASE WHEN {score} {op} 0D THEN {label(labels[1])} ELSE {label(labels[0])} END"


def array_of(values: Sequence[str]) -> str:
    return f"array({', '.join(values)})"


class TextOps:
    """The numeric idioms of a model's last step, written as SQL text (see ``columns.ColumnOps`` for Columns)."""

    const = staticmethod(double)
    label = staticmethod(label)
    chain_sum = staticmethod(chain_sum)
    sigmoid = staticmethod(sigmoid)
    softmax = staticmethod(softmax)
    argmax_label = staticmethod(argmax_label)
    positive_label = staticmethod(positive_label)
    array_of = staticmethod(array_of)

    @staticmethod
    def times(factor: float, x: str) -> str:
        return f"({double(factor)} * {x})"

    @staticmethod
    def divide(x: str, divisor: float) -> str:
        return f"({x} / {double(divisor)})"

    @staticmethod
    def one_minus(x: str) -> str:
        return f"(1D - {x})"

    @staticmethod
    def exp(x: str) -> str:
        return f"exp({x})"

    @staticmethod
    def abs(x: str) -> str:
        return f"abs({x})"

    @staticmethod
    def ratio(x: str, y: str) -> str:
        return f"({x} / {y})"

    @staticmethod
    def struct(fields: dict[str, str]) -> str:
        return f"named_struct({', '.join(f'{string(k)}, {v}' for k, v in fields.items())})"


TEXT = TextOps()
