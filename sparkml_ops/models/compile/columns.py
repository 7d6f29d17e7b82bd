"""A compiled tree ensemble as a Spark ``Column``: each tree parsed once, the trees kept apart in generated code.

Spark's whole-stage code generation writes a projection's expression into one Java method,
and a method past 64 KB of bytecode (``spark.sql.codegen.hugeMethodLimit``) makes Spark drop
code generation for the stage, quietly. A forest of a few dozen trees is past it. But Spark
evaluates a *common subexpression* once, in a method of its own: so every tree becomes one,
referenced at least twice (a classifier's tree is an array of its class values, read once
per class; a single-valued tree is read as ``greatest(t, t)``, which is ``t``), and the
stage's methods stay small whatever the number of trees.

Spark's SQL parser reads about a megabyte of such text a second, so each tree is parsed
once (in a classic session, straight to an expression the Column reuses; over Spark
Connect, as one ``expr`` per tree) and the combining step — sums, means, sigmoid, softmax,
the class label — is built with the Column API by :class:`ColumnOps`, the same idioms
:class:`~sparkml_ops.models.compile.sqltext.TextOps` writes as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import bind_slots

PARSE_THREADS = 4


class ColumnOps:
    """:class:`~sparkml_ops.models.compile.sqltext.TextOps` for pyspark Columns (same expression trees)."""

    def __init__(self) -> None:
        from pyspark.sql import functions

        self.F = functions

    def const(self, value: float) -> Any:
        return self.F.lit(float(value))

    def label(self, value: Any) -> Any:
        return self.F.expr(q.label(value))

    def chain_sum(self, terms: Sequence[Any]) -> Any:
        """:func:`~sqltext.chain_sum` (the same runs of terms)."""
        if len(terms) > q.SUM_CHUNK:
            return self.chain_sum([self.chain_sum(run) for run in q.chunks(terms)])
        total = terms[0] if terms else self.const(0.0)
        for term in terms[1:]:
            total = total + term
        return total

    def times(self, factor: float, x: Any) -> Any:
        return self.const(factor) * x

    def divide(self, x: Any, divisor: float) -> Any:
        return x / self.const(divisor)

    def one_minus(self, x: Any) -> Any:
        return self.const(1.0) - x

    def exp(self, x: Any) -> Any:
        return self.F.exp(x)

    def sigmoid(self, x: Any) -> Any:
        return self.const(1.0) / (self.const(1.0) + self.F.exp(-x))

    def softmax(self, xs: Sequence[Any]) -> list[Any]:
        top = self.F.greatest(*xs)
        exps = [self.F.exp(x - top) for x in xs]
        total = self.chain_sum(exps)
        return [e / total for e in exps]

    def argmax_label(self, scores: Sequence[Any], labels: Sequence[Any]) -> Any:
        if len(scores) == 1:
            return self.label(labels[0])
        F = self.F
        pairs = [F.named_struct(F.lit("s"), s, F.lit("i"), F.lit(-j)) for j, s in enumerate(scores)]
        names = F.array(*[self.label(v) for v in labels])
        return F.element_at(names, F.lit(1) - F.array_max(F.array(*pairs)).getField("i"))

    def positive_label(self, score: Any, labels: Sequence[Any], *, strict: bool) -> Any:
        hit = score > self.const(0.0) if strict else score >= self.const(0.0)
        return self.F.when(hit, self.label(labels[1])).otherwise(self.label(labels[0]))

    def array_of(self, values: Sequence[Any]) -> Any:
        return self.F.array(*values)

    def abs(self, x: Any) -> Any:
        return self.F.abs(x)

    def ratio(self, x: Any, y: Any) -> Any:
        return x / y

    def struct(self, fields: dict[str, Any]) -> Any:
        return self.F.struct(*[v.alias(k) for k, v in fields.items()])


def parsed(text: str) -> Any:
    """``F.expr(text)``, parsed now and once when the session is a classic one.

    A Column made by ``F.expr`` holds the text and Spark parses it again wherever the Column
    is used; a tree used twice would be parsed twice. Over Spark Connect, or if the classic
    internals differ, the plain ``F.expr`` Column is returned.
    """
    from pyspark.sql import Column, SparkSession
    from pyspark.sql import functions as F

    session = SparkSession.getActiveSession()
    jsession = getattr(session, "_jsparkSession", None)
    if jsession is None:
        return F.expr(text)
    try:
        jvm: Any = getattr(session, "_jvm", None)
        expression = jsession.sessionState().sqlParser().parseExpression(text)
        node = jvm.org.apache.spark.sql.classic.ExpressionColumnNode.apply(expression)
        return Column(jvm.org.apache.spark.sql.Column(node))
    except Exception as exc:  # noqa: BLE001 - only the shortcut failed: parse on use instead
        if "ParseException" in type(exc).__name__ or "ParseException" in str(exc)[:200]:
            raise
        return F.expr(text)


def ensemble_column(ensemble: Any, refs: Sequence[str]) -> Any:
    """The ensemble (``trees.Ensemble``) over input references ``refs`` as one Column."""
    from concurrent.futures import ThreadPoolExecutor

    ops = ColumnOps()
    values = []
    # the JVM parses on the caller's py4j thread: a few callers keep the driver's cores busy
    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        parts = list(pool.map(lambda tree: parsed(bind_slots(tree.sql_all(), refs)), ensemble.trees))
    for tree, part in zip(ensemble.trees, parts, strict=True):
        if tree.width == 1:
            values.append([ops.F.greatest(part, part)])  # read twice: a common subexpression
        else:
            values.append([part[k] for k in range(tree.width)])
    return ensemble.head(ops, values)
