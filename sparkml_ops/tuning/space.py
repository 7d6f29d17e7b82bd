"""Search spaces: the distributions users write, checked up front, and their Optuna form.

A space maps parameter names to distributions (``uniform``, ``loguniform``, ``randint``,
``choice``) or plain constants. ``choice`` of dicts makes a conditional space: the chosen
dict's own distributions are sampled only when it is picked. Optuna samples every
distribution under a *path* name (``model[1].depth``) so two branches never share a name;
users see the resolved values flattened with dots (``model.depth``), which is what the
child runs log as params.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkml_ops.errors import BadInput

_PRIMITIVE = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[lo, hi]``."""

    lo: float
    hi: float


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on ``[log lo, log hi]`` (learning rates, penalties)."""

    lo: float
    hi: float


@dataclass(frozen=True)
class RandInt:
    """An integer from ``lo`` to ``hi``, both inclusive."""

    lo: int
    hi: int


@dataclass(frozen=True)
class Choice:
    """One of ``options``; dict options are conditional sub-spaces."""

    options: tuple[Any, ...]


Distribution = Uniform | LogUniform | RandInt | Choice


def uniform(lo: float, hi: float) -> Uniform:
    """A float drawn uniformly from ``[lo, hi]``: a search-space dimension for :func:`~sparkml_ops.tuning.tune`.

    Args:
        lo: the smallest value (finite).
        hi: the largest value (finite, > ``lo``).

    Raises:
        BadInput: bounds that are not finite numbers or not ordered, when the space is validated
            (at the start of ``tune``, before any Spark job).

    Example: ``tune(objective, {"lr": uniform(0.0, 1.0)}, max_trials=20)``.
    """
    return Uniform(lo, hi)


def loguniform(lo: float, hi: float) -> LogUniform:
    """A float log-uniform on ``[lo, hi]``: for scales such as learning rates and regularisation strengths.

    Args:
        lo: the smallest value (> 0).
        hi: the largest value (> ``lo``).

    Raises:
        BadInput: bounds that are not positive finite numbers or not ordered, when the space is
            validated (at the start of ``tune``).

    Example: ``{"C": loguniform(1e-3, 1e2)}``.
    """
    return LogUniform(lo, hi)


def randint(lo: int, hi: int) -> RandInt:
    """An integer in ``[lo, hi]``, inclusive at both ends (unlike ``numpy.random.randint``).

    Args:
        lo: the smallest value.
        hi: the largest value (>= ``lo``).

    Raises:
        BadInput: bounds that are not integers or not ordered, when the space is validated.

    Example: ``{"max_depth": randint(2, 12)}``.
    """
    return RandInt(lo, hi)


def choice(options: Sequence[Any]) -> Choice:
    """One of ``options``; an option that is a dict is a sub-space sampled only when chosen.

    Args:
        options: a list or tuple of values (numbers, strings, ``None``) or dict sub-spaces.

    Raises:
        BadInput: ``options`` is a string, a mapping or not a sequence (here), or empty (when
            the space is validated).

    Example: ``{"model": choice([{"kind": "lr", "C": loguniform(1e-3, 10)}, {"kind": "rf", "depth": randint(2, 8)}])}``.
    """
    if isinstance(options, (str, bytes, Mapping)) or not isinstance(options, Sequence):
        raise BadInput(f"choice() takes a list of options, got {options!r}")
    return Choice(tuple(options))


# -- validation ----------------------------------------------------------------------------

def _number(name: str, value: Any, *, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise BadInput(f"search space parameter {name!r}: bound {value!r} must be {kind}")
    return value


def validate(space: Mapping[str, Any], prefix: str = "") -> None:
    """Check every distribution (bounds, options, names) before anything runs; raises :class:`BadInput`."""
    if not isinstance(space, Mapping):
        raise BadInput(f"search space {prefix or ''}must be a dict of name -> distribution, got {space!r}")
    if not space and not prefix:
        raise BadInput("search space is empty: give at least one parameter, e.g. {'lr': loguniform(1e-4, 1e-1)}")
    for key, dist in space.items():
        if not isinstance(key, str) or not key or any(c in key for c in ".[]"):
            raise BadInput(f"search space parameter name {key!r} must be a non-empty string without '.', '[' or ']'")
        name = prefix + key
        if isinstance(dist, (Uniform, LogUniform, RandInt)):
            lo = _number(name, dist.lo, integer=isinstance(dist, RandInt))
            hi = _number(name, dist.hi, integer=isinstance(dist, RandInt))
            if isinstance(dist, RandInt) and lo > hi:
                raise BadInput(f"search space parameter {name!r}: randint lo {lo} must be <= hi {hi}")
            if not isinstance(dist, RandInt) and lo >= hi:
                raise BadInput(f"search space parameter {name!r}: lo {lo} must be < hi {hi}")
            if isinstance(dist, LogUniform) and lo <= 0:
                raise BadInput(f"search space parameter {name!r}: loguniform lo {lo} must be > 0")
        elif isinstance(dist, Choice):
            if not dist.options:
                raise BadInput(f"search space parameter {name!r}: choice() needs at least one option")
            for i, option in enumerate(dist.options):
                if isinstance(option, Mapping):
                    validate(option, f"{name}[{i}].")
                elif not isinstance(option, _PRIMITIVE):
                    raise BadInput(f"search space parameter {name!r}: choice option {option!r} must be a "
                                   "str, number, bool, None or a dict (a conditional sub-space)")
        elif isinstance(dist, Mapping):
            validate(dist, f"{name}.")
        elif not isinstance(dist, _PRIMITIVE):
            raise BadInput(f"search space parameter {name!r}: {dist!r} is not a distribution; use uniform, "
                           "loguniform, randint or choice from sparkml_ops.tuning (or a constant)")


# -- Optuna --------------------------------------------------------------------------------

def _optuna_distribution(dist: Distribution):
    import optuna.distributions as od

    if isinstance(dist, Uniform):
        return od.FloatDistribution(float(dist.lo), float(dist.hi))
    if isinstance(dist, LogUniform):
        return od.FloatDistribution(float(dist.lo), float(dist.hi), log=True)
    if isinstance(dist, RandInt):
        return od.IntDistribution(int(dist.lo), int(dist.hi))
    return od.CategoricalDistribution(_choice_values(dist))


def _choice_values(dist: Choice) -> tuple[Any, ...]:
    """Optuna's categories: the options themselves, or their indices when any is a sub-space."""
    if any(isinstance(o, Mapping) for o in dist.options):
        return tuple(range(len(dist.options)))
    return dist.options


def _walk(space: Mapping[str, Any], pick, path: str = "", shown: str = "") -> dict[str, Any]:
    """Resolve ``space`` to nested values; ``pick(path, dist)`` returns a distribution's raw value."""
    out: dict[str, Any] = {}
    for key, dist in space.items():
        here, label = path + key, shown + key
        if isinstance(dist, Choice):
            raw = pick(here, dist)
            option = dist.options[raw] if any(isinstance(o, Mapping) for o in dist.options) else raw
            out[key] = _walk(option, pick, f"{here}[{raw}].", f"{label}.") if isinstance(option, Mapping) else option
        elif isinstance(dist, (Uniform, LogUniform, RandInt)):
            out[key] = pick(here, dist)
        elif isinstance(dist, Mapping):
            out[key] = _walk(dist, pick, f"{here}.", f"{label}.")
        else:
            out[key] = dist
    return out


def suggest(trial: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """Ask an Optuna trial for one point of ``space``; returns the nested parameter values."""

    def pick(path: str, dist: Distribution) -> Any:
        if isinstance(dist, Uniform):
            return trial.suggest_float(path, dist.lo, dist.hi)
        if isinstance(dist, LogUniform):
            return trial.suggest_float(path, dist.lo, dist.hi, log=True)
        if isinstance(dist, RandInt):
            return trial.suggest_int(path, dist.lo, dist.hi)
        return trial.suggest_categorical(path, _choice_values(dist))

    return _walk(space, pick)


def distributions_for(space: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the paths a finished trial sampled (to re-add it on resume)."""
    found: dict[str, Any] = {}

    def seen(path: str, dist: Distribution) -> None:
        found[path] = _optuna_distribution(dist)

    _walk(space, _recording(raw, seen))
    return found


def _recording(raw: Mapping[str, Any], seen):
    """A ``pick`` that returns the recorded raw value, telling ``seen`` each distribution on the way."""

    def pick(path: str, dist: Distribution) -> Any:
        if path not in raw:
            raise BadInput(f"trial parameters {dict(raw)} miss {path!r}: the study's search space has changed")
        seen(path, dist)
        return raw[path]

    return pick


def resolve(space: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The nested values a trial's objective received, from the raw values Optuna sampled."""
    return _walk(space, _recording(raw, lambda path, dist: None))


def grid_space(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid for Optuna's GridSampler; only flat ``choice`` and ``randint`` parameters can be gridded."""
    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, RandInt):
            grid[key] = list(range(dist.lo, dist.hi + 1))
        elif isinstance(dist, Choice) and not any(isinstance(o, Mapping) for o in dist.options):
            grid[key] = list(dist.options)
        elif isinstance(dist, (Uniform, LogUniform, Choice, Mapping)):
            raise BadInput(f"sampler 'grid' needs discrete, unconditional parameters (choice of values, randint); "
                           f"parameter {key!r} is {dist!r}")
    return grid


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"depth": 3}}`` -> ``{"model.depth": 3}``: the params a child run logs."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def describe(space: Mapping[str, Any]) -> str:
    """A JSON description of ``space`` (stored on the study's parent run; compared on resume)."""

    def encode(dist: Any) -> Any:
        if isinstance(dist, Choice):
            return {"choice": [encode(o) for o in dist.options]}
        if isinstance(dist, (Uniform, LogUniform, RandInt)):
            return {type(dist).__name__.lower(): [dist.lo, dist.hi]}
        if isinstance(dist, Mapping):
            return {k: encode(v) for k, v in dist.items()}
        return dist

    return json.dumps(encode(space), sort_keys=True, default=repr)


# -- command-line form ---------------------------------------------------------------------

_KINDS = {"uniform": 2, "loguniform": 2, "randint": 2, "choice": None}


def _scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, Distribution]:
    """``'lr=loguniform:1e-4:1e-1'``, ``'depth=randint:2:10'``, ``'kind=choice:a,b'`` -> (name, distribution)."""
    name, sep, rest = spec.partition("=")
    kind, _, args = rest.partition(":")
    if not sep or not name.strip() or kind not in _KINDS:
        raise BadInput(f"--space {spec!r} must look like NAME=KIND:ARGS with KIND one of {sorted(_KINDS)}, "
                       "e.g. 'lr=loguniform:1e-4:1e-1', 'depth=randint:2:10', 'kind=choice:gini,entropy'")
    name = name.strip()
    if kind == "choice":
        options = [_scalar(o.strip()) for o in args.split(",") if o.strip()]
        dist: Distribution = choice(options)
    else:
        parts = args.split(":")
        if len(parts) != 2:
            raise BadInput(f"--space {spec!r}: {kind} takes two bounds, {kind}:LO:HI")
        try:
            lo, hi = (int(p) if kind == "randint" else float(p) for p in parts)
        except ValueError as exc:
            raise BadInput(f"--space {spec!r}: bounds {parts} must be {'integers' if kind == 'randint' else 'numbers'}"
                           ) from exc
        make = uniform if kind == "uniform" else loguniform
        dist = randint(int(lo), int(hi)) if kind == "randint" else make(lo, hi)
    validate({name: dist})
    return name, dist
