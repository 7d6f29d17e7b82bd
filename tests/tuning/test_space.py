"""Search spaces and bad input: every static mistake is refused before any run or Spark job."""

from __future__ import annotations

import threading

import pytest
from mlflow import MlflowClient

from sparkml_ops.errors import BadInput
from sparkml_ops.tuning import choice, loguniform, randint, tune, uniform
from sparkml_ops.tuning.space import flatten, parse_spec, resolve, validate
from tests.tuning import objectives as O


@pytest.mark.parametrize("space, message", [
    ({"x": uniform(1, 1)}, "'x': lo 1 must be < hi 1"),
    ({"x": loguniform(0, 1)}, "'x': loguniform lo 0 must be > 0"),
    ({"x": randint(5, 2)}, "'x': randint lo 5 must be <= hi 2"),
    ({"x": randint(1.5, 3)}, "'x': bound 1.5 must be an integer"),
    ({"x": choice([])}, "'x': choice() needs at least one option"),
    ({"m": choice([{"a": uniform(3, 2)}])}, "'m[0].a': lo 3 must be < hi 2"),
    ({"x": object()}, "'x': <object"),
    ({"x": [1, 2]}, "is not a distribution"),
    ({}, "search space is empty"),
    ({"a.b": uniform(0, 1)}, "name 'a.b'"),
])
def test_bad_spaces_are_refused_naming_the_parameter(space, message):
    with pytest.raises(BadInput) as caught:
        validate(space)
    assert message in str(caught.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"space": {"x": uniform(0, 0)}}, "lo 0 must be < hi 0"),
    ({"max_trials": 0}, "max_trials=0 must be a positive integer"),
    ({"mode": "up"}, "mode='up' must be 'min' or 'max'"),
    ({"sampler": "cmaes"}, "sampler='cmaes' must be one of"),
    ({"sampler": "grid"}, "parameter 'x' is Uniform"),
    ({"parallelism": -1}, "parallelism=-1"),
    ({"timeout_s": float("nan")}, "timeout_s=nan"),
    ({"objective": lambda p, lock=threading.Lock(): 0.0}, "cannot be pickled"),
])
def test_bad_calls_fail_before_any_run_or_spark_job(tracking_uri, kwargs, message):
    call = {"objective": O.trivial, "space": {"x": uniform(0, 1)}, "max_trials": 3, **kwargs}
    objective, space = call.pop("objective"), call.pop("space")
    with pytest.raises(BadInput) as caught:
        tune(objective, space, **call)
    assert message in str(caught.value)
    assert MlflowClient().search_runs(["0"]) == []  # nothing recorded


def test_cli_specs_parse_to_distributions():
    assert parse_spec("lr=loguniform:1e-4:1e-1") == ("lr", loguniform(1e-4, 1e-1))
    assert parse_spec("depth=randint:2:10") == ("depth", randint(2, 10))
    assert parse_spec("crit=choice:gini,entropy") == ("crit", choice(["gini", "entropy"]))
    assert parse_spec("n=choice:1,2.5") == ("n", choice([1, 2.5]))
    for bad, message in [("lr=gaussian:0:1", "KIND one of"), ("lr", "NAME=KIND:ARGS"),
                         ("lr=uniform:1", "two bounds"), ("lr=uniform:a:b", "must be numbers"),
                         ("lr=uniform:2:1", "lo 2.0 must be < hi 1.0"), ("c=choice:", "at least one option")]:
        with pytest.raises(BadInput) as caught:
            parse_spec(bad)
        assert message in str(caught.value), (bad, caught.value)


def test_nested_values_resolve_and_flatten():
    space = {"model": choice([{"kind": "linear", "alpha": loguniform(1e-3, 1)}, {"kind": "tree"}]), "seed": 1}
    values = resolve(space, {"model": 0, "model[0].alpha": 0.01})
    assert values == {"model": {"kind": "linear", "alpha": 0.01}, "seed": 1}
    assert flatten(values) == {"model.kind": "linear", "model.alpha": 0.01, "seed": 1}
    with pytest.raises(BadInput, match="search space has changed"):
        resolve(space, {"model": 0})
