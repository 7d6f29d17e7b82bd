"""What a compiled model is, and the error that says why a model does not compile."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkml_ops.errors import BadInput
from sparkml_ops.models.compile import sqltext as q

_SLOT = re.compile("\x00(\\d+)\x00")


class NotCompilable(BadInput):
    """The model (or one part of it) has no Spark SQL form; the message names the part."""


def slot(i: int) -> str:
    """Placeholder for input ``i`` in a template; :meth:`Compiled.bind` replaces it."""
    return f"\x00{i}\x00"


@dataclass(frozen=True)
class Feature:
    """One column a model step sees: its SQL expression and whether it is numeric or a string."""

    sql: str
    kind: str = "num"  # "num" (DOUBLE) | "str"


class BoundSql(str):
    """SQL text of a compiled model bound to its input references (kept in ``refs``)."""

    refs: tuple[str, ...]

    def __new__(cls, text: str, refs: tuple[str, ...]) -> BoundSql:
        out = super().__new__(cls, text)
        out.refs = refs
        return out


def bind_slots(template: str, parts: Sequence[str]) -> str:
    return _SLOT.sub(lambda m: parts[int(m.group(1))], template)


@dataclass(frozen=True)
class Compiled:
    """A model as one Spark SQL expression over its inputs.

    ``template`` holds a placeholder per input (in the signature's order); :meth:`bind`
    puts column references (or any SQL expressions) in their place.
    """

    template: str
    input_names: tuple[str, ...] | None  # signature names; None for an unnamed tensor
    width: int
    result_type: str  # Spark DDL of the result
    description: str  # e.g. "RandomForestClassifier (50 trees) predict_proba"
    tree_count: int = 0
    compile_seconds: float = 0.0
    ensemble: Any = field(default=None, repr=False, compare=False)  # trees.Ensemble: Columns keep trees apart

    def bind(self, refs: Sequence[str]) -> BoundSql:
        """The expression with input ``i`` replaced by the SQL text ``refs[i]``."""
        return BoundSql(bind_slots(self.template, self._refs(refs)), tuple(refs))

    def _refs(self, refs: Sequence[str]) -> list[str]:
        if len(refs) != self.width:
            raise BadInput(f"the compiled model takes {self.width} inputs, got {len(refs)}: {list(refs)}")
        return [q.ref(r) for r in refs]

    def column(self, sql: str) -> Any:
        """A pyspark Column for ``sql`` (what :meth:`bind` returned).

        A tree ensemble becomes a Column whose trees are parsed once each and stay in methods
        of their own in Spark's generated code (see ``columns``); anything else is ``F.expr(sql)``.
        """
        from pyspark.sql import functions as F

        refs = getattr(sql, "refs", None)
        if self.ensemble is None or refs is None:
            return F.expr(sql)
        from sparkml_ops.models.compile import columns

        return columns.ensemble_column(self.ensemble, self._refs(refs)).cast(self.result_type)

    def sql(self, columns: Sequence[str] | None = None) -> str:
        """The expression over column names: ``columns`` or the signature's own names."""
        from sparkml_ops.models.compile.sqltext import quote

        names = list(columns) if columns is not None else list(self.input_names or ())
        if self.input_names is None and columns is None:
            names = [f"input_{i}" for i in range(self.width)]
        return self.bind([quote(n) for n in names])
