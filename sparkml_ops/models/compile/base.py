"""What a compiled model is, and the error that says why a model does not compile."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sparkml_ops.errors import BadInput

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

    def bind(self, refs: Sequence[str]) -> str:
        """The expression with input ``i`` replaced by the SQL text ``refs[i]``."""
        if len(refs) != self.width:
            raise BadInput(f"the compiled model takes {self.width} inputs, got {len(refs)}: {list(refs)}")
        parts = [f"({r})" for r in refs]
        return _SLOT.sub(lambda m: parts[int(m.group(1))], self.template)

    def sql(self, columns: Sequence[str] | None = None) -> str:
        """The expression over column names: ``columns`` or the signature's own names."""
        from sparkml_ops.models.compile.sqltext import quote

        names = list(columns) if columns is not None else list(self.input_names or ())
        if self.input_names is None and columns is None:
            names = [f"input_{i}" for i in range(self.width)]
        return self.bind([quote(n) for n in names])
