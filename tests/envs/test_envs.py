"""Packed environments: spec hashing, model requirements, real builds, cache hits, relocation."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sparkml_ops.envs import (
    build_packed_env,
    compare_with_current,
    manifest,
    normalise_requirements,
    python_version_from_model,
    requirements_from_model,
    spark_submit_args,
    unpacked_root,
)
from sparkml_ops.envs.pack import unpack
from sparkml_ops.envs.spec import current_interpreter, env_hash, find_interpreter
from sparkml_ops.errors import BadInput, NotFound

SMALL = ["cloudpickle"]


@pytest.fixture(scope="module")
def env_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("envcache")


@pytest.fixture(scope="module")
def small_env(env_cache: Path):
    return build_packed_env(SMALL, cache_dir=env_cache, progress=False)


def test_normalisation_makes_equivalent_specs_hash_equal():
    a = normalise_requirements(["Scikit_Learn>=1.0,<2  # comment", "numpy", "", "# only a comment"])
    b = normalise_requirements(["numpy", "scikit-learn<2,>=1.0", "numpy"])
    assert a == b == ["numpy", "scikit-learn<2,>=1.0"]
    interp = current_interpreter()
    assert env_hash(a, interp) == env_hash(b, interp)
    assert env_hash(a, interp) != env_hash(a + ["pandas"], interp)


def test_bad_requirement_inputs_are_named():
    with pytest.raises(BadInput, match="string"):
        normalise_requirements("numpy")
    with pytest.raises(BadInput, match="-r other.txt"):
        normalise_requirements(["-r other.txt"])
    with pytest.raises(BadInput, match="'three'"):
        find_interpreter("three")
    with pytest.raises(NotFound, match="2.6"):
        find_interpreter("2.6")


def test_requirements_from_model(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "python_env.yaml").write_text("python: 3.11.7\nbuild_dependencies: [pip]\n"
                                           "dependencies:\n  - -r requirements.txt\n  - extra-pkg\n")
    (model / "base.txt").write_text("numpy>=1.20\n")
    (model / "requirements.txt").write_text("mlflow==3.1\n# comment\n-r base.txt\n\ncloudpickle==3.0\n")
    assert requirements_from_model(model) == ["mlflow==3.1", "numpy>=1.20", "cloudpickle==3.0"]
    assert python_version_from_model(model) == "3.11.7"
    (model / "requirements.txt").unlink()
    (model / "requirements.txt").write_text("pandas\n")
    (model / "python_env.yaml").write_text("python: '3.11'\ndependencies: [pandas, scipy]\n")
    (model / "requirements.txt").unlink()
    assert requirements_from_model(model) == ["pandas", "scipy"]
    with pytest.raises(NotFound, match="neither requirements.txt nor python_env.yaml"):
        requirements_from_model(tmp_path)


def test_compare_with_current_names_exact_differences():
    import cloudpickle

    assert compare_with_current([f"cloudpickle=={cloudpickle.__version__}", "pytest"]) == []
    diffs = compare_with_current(["cloudpickle>=999", "surely-not-installed-pkg==1.0",
                                  "numpy; python_version < '3.0'"])
    assert diffs == [f"cloudpickle: required >=999, installed {cloudpickle.__version__}",
                     "surely-not-installed-pkg: required ==1.0, not installed"]


def test_build_then_cache_hit(env_cache: Path, small_env):
    assert not small_env.cache_hit
    assert small_env.archive.is_file() and small_env.archive.parent == env_cache.resolve()
    again = build_packed_env(["CloudPickle  # same spec, other spelling"], cache_dir=env_cache, progress=False)
    assert again.cache_hit and again.env_hash == small_env.env_hash
    assert again.build_seconds <= 0.1 * small_env.build_seconds
    info = manifest(again)
    assert any(d.lower().startswith("cloudpickle==") for d in info["installed"])
    assert info["requirements"] == ["cloudpickle"]


def test_archive_is_relocatable(small_env, tmp_path: Path):
    with tarfile.open(small_env.archive) as tar:
        names = tar.getnames()
    assert "bin/python" in names and "pyvenv.cfg" in names  # archive root is the env root
    elsewhere = tmp_path / "somewhere" / "environment"
    unpack(small_env.archive, elsewhere)
    code = "import sys, cloudpickle; print(sys.prefix); print(cloudpickle.__file__)"
    out = subprocess.run([str(elsewhere / small_env.python), "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == str(elsewhere)
    assert out[1].startswith(str(elsewhere))
    for script in (elsewhere / "bin").iterdir():  # no script points back at the build directory
        if script.is_file() and not script.is_symlink():
            assert ".build-" not in script.read_text(errors="replace")
    assert (unpacked_root(small_env) / "bin" / "python").exists()


def test_progress_goes_to_stderr_and_pip_failure_is_clear(env_cache: Path):
    code = ("import sys; from sparkml_ops.envs import build_packed_env; "
            f"build_packed_env(['sparkml-ops-no-such-package-xyz==0.0.1'], cache_dir={str(env_cache)!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "[sparkml_ops env" in proc.stderr and "creating virtualenv" in proc.stderr
    assert "pip install of ['sparkml-ops-no-such-package-xyz==0.0.1'] failed" in proc.stderr
    assert not list(env_cache.glob(".build-*"))  # nothing half-built is left behind


def _build_in_child(cache: str) -> tuple[str, bool]:
    from sparkml_ops.envs import build_packed_env

    env = build_packed_env(["cloudpickle", "six"], cache_dir=Path(cache), progress=False)
    return env.env_hash, env.cache_hit


def test_concurrent_builders_build_once(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_build_in_child, [str(tmp_path)] * 2)
    assert results[0][0] == results[1][0]
    assert sorted(hit for _, hit in results) == [False, True]
    assert len(list(tmp_path.glob("*.tar.gz"))) == 1


def test_spark_submit_args(small_env):
    args = spark_submit_args(small_env, master="spark://127.0.0.1:7077")
    assert args[:2] == ["--archives", f"{small_env.archive}#environment"]
    assert "spark.pyspark.python=./environment/bin/python" in args
    assert f"spark.pyspark.driver.python={sys.executable}" in args
    cluster = spark_submit_args(small_env, "venv", master="yarn", deploy_mode="cluster")
    assert not any("driver.python" in a for a in cluster) and "spark.pyspark.python=./venv/bin/python" in cluster
    local = spark_submit_args(small_env, master="local[2]")
    assert "--archives" not in local
    assert f"spark.pyspark.python={unpacked_root(small_env)}/bin/python" in local
    with pytest.raises(BadInput, match="alias"):
        spark_submit_args(small_env, "../x")
