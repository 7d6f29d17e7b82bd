"""MLproject parsing, parameter validation, sources and environments — no Spark, no runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkml_ops.errors import BadInput, NotFound, NotSupported
from sparkml_ops.projects.command import check_master, parse_python_command
from sparkml_ops.projects.environment import prepare_env, project_requirements, translate_conda
from sparkml_ops.projects.mlproject import load_project
from sparkml_ops.projects.source import fetch, is_git_uri, split_uri
from tests.projects.conftest import write_project


def test_typed_parameters_and_command(spark_project: Path, tmp_path: Path):
    project = load_project(spark_project)
    assert project.name == "tiny" and project.env_kind == "python_env"
    entry = project.entry_point("main")
    declared, extra = entry.resolve({"alpha": "0.25", "extra": "a b"}, base_dir=tmp_path)
    assert declared == {"alpha": "0.25", "n": "10"} and extra == {"extra": "a b"}
    assert entry.command_line(declared, extra) == "python train.py --alpha 0.25 --n 10 --extra 'a b'"


@pytest.mark.parametrize(("params", "message"), [
    ({"alpha": "fast"}, "parameter 'alpha' must be a float, got 'fast'"),
    ({"n": "1.5"}, "parameter 'n' must be an int, got '1.5'"),
])
def test_parameter_type_errors_name_the_parameter(spark_project: Path, params, message):
    with pytest.raises(BadInput, match=message):
        load_project(spark_project).entry_point("main").resolve(params, base_dir=spark_project)


def test_required_path_and_uri_parameters(tmp_path: Path):
    write_project(tmp_path / "p", {"MLproject": """
        name: p
        entry_points:
          main:
            parameters:
              data: path
              out: {type: uri, default: "s3://bucket/out"}
              mode: {type: string, default: fast}
            command: "python x.py {data} {out} {mode}"
    """})
    entry = load_project(tmp_path / "p").entry_point("main")
    with pytest.raises(BadInput, match=r"missing required parameter\(s\) \['data'\]"):
        entry.resolve({}, base_dir=tmp_path)
    declared, _ = entry.resolve({"data": "rel/file.csv"}, base_dir=tmp_path)
    assert declared == {"data": str(tmp_path / "rel" / "file.csv"), "out": "s3://bucket/out", "mode": "fast"}
    with pytest.raises(BadInput, match="'data' is a path and must be a local path"):
        entry.resolve({"data": "s3://b/k"}, base_dir=tmp_path)


def test_bad_mlproject_files(tmp_path: Path):
    write_project(tmp_path / "a", {"MLproject": "name: a\nentry_points:\n  main:\n    parameters:\n"
                                                "      x: {type: double}\n    command: python x.py\n"})
    with pytest.raises(BadInput, match="type 'double'; allowed types"):
        load_project(tmp_path / "a")
    write_project(tmp_path / "b", {"MLproject": "name: b\npython_env: missing.yaml\nentry_points: {}\n"})
    with pytest.raises(NotFound, match="missing.yaml"):
        load_project(tmp_path / "b")
    write_project(tmp_path / "c", {"MLproject": "name: c\nentry_points:\n  main:\n    command: python {nope}.py\n"})
    with pytest.raises(BadInput, match=r"uses \{nope\}, which is not a declared parameter"):
        load_project(tmp_path / "c").entry_point("main").command_line({}, {})
    with pytest.raises(NotFound, match="entry point 'other' is not in project 'c'"):
        load_project(tmp_path / "c").entry_point("other")


def test_directory_without_mlproject_runs_its_files(tmp_path: Path):
    write_project(tmp_path / "plain", {"job.py": "print(1)\n", "run.sh": "echo hi\n", "requirements.txt": "six\n"})
    project = load_project(tmp_path / "plain")
    assert project.env_kind == "python_env" and project_requirements(project) == (["six"], None)
    assert project.entry_point("job.py").command == "python job.py"
    assert project.entry_point("run.sh").command.endswith("run.sh")


def test_conda_env_translation_and_clear_failure(tmp_path: Path):
    good = write_project(tmp_path / "good", {"conda.yaml": """
        name: x
        channels: [conda-forge]
        dependencies:
          - python=3.11
          - pip
          - conda-forge::numpy=1.26
          - scikit-learn>=1.3
          - pandas==2.2.1=py311h_0
          - pip:
            - cloudpickle==3.0
    """})
    reqs, python, conda_only = translate_conda(good / "conda.yaml")
    assert python == "3.11" and conda_only == []
    assert reqs == ["numpy==1.26.*", "scikit-learn>=1.3", "pandas==2.2.1", "cloudpickle==3.0"]
    write_project(tmp_path / "bad", {"conda.yaml": "dependencies:\n  - python=3.11\n  - cudatoolkit=11.8\n"
                                                   "  - libgcc-ng\n  - numpy\n",
                                     "MLproject": "name: bad\nconda_env: conda.yaml\nentry_points: {}\n"})
    with pytest.raises(NotSupported, match=r"only conda provides: \['cudatoolkit=11.8', 'libgcc-ng'\]"):
        prepare_env(load_project(tmp_path / "bad"), progress=False)


def test_docker_env_is_a_clear_error(tmp_path: Path):
    write_project(tmp_path / "d", {"MLproject": "name: d\ndocker_env:\n  image: python:3.11\nentry_points: {}\n"})
    with pytest.raises(NotSupported, match="docker_env, which the spark-submit backend does not support"):
        prepare_env(load_project(tmp_path / "d"), progress=False)


def test_local_env_manager_reports_differences(tmp_path: Path):
    write_project(tmp_path / "l", {"MLproject": "name: l\npython_env: python_env.yaml\nentry_points: {}\n",
                                   "python_env.yaml": "dependencies: [cloudpickle>=999]\n"})
    env = prepare_env(load_project(tmp_path / "l"), "local")
    assert env.packed is None and env.env_hash == "local"
    assert len(env.warnings) == 1 and env.warnings[0].startswith("cloudpickle: required >=999")


def test_python_command_detection():
    assert parse_python_command("python train.py --a 1") == ("--script", "train.py", ["--a", "1"])
    assert parse_python_command("python3 -u -W ignore train.py") == ("--script", "train.py", [])
    assert parse_python_command("python -m pkg.mod x") == ("--module", "pkg.mod", ["x"])
    assert parse_python_command("python train.py 'a|b'") == ("--script", "train.py", ["a|b"])
    for plain in ("bash run.sh", "python a.py && echo done", "python -c 'print(1)'", "Rscript x.R"):
        assert parse_python_command(plain) is None


def test_master_and_source_validation(tmp_path: Path):
    for ok in ("local", "local[2]", "local[*]", "spark://127.0.0.1:7077", "yarn", "k8s://https://h:6443"):
        assert check_master(ok) == ok
    with pytest.raises(BadInput, match="Spark master 'mesos://x'"):
        check_master("mesos://x")
    assert split_uri("https://h/r.git#sub/dir") == ("https://h/r.git", "sub/dir")
    assert is_git_uri("file:///tmp/x.git") and not is_git_uri(str(tmp_path))
    with pytest.raises(BadInput, match="must be a relative path inside the project"):
        split_uri("file:///r#../etc")
    with pytest.raises(BadInput, match="--version 'v1' needs a git URI"):
        fetch(str(tmp_path), "v1", tmp_path)
    with pytest.raises(NotFound, match="does not exist"):
        fetch(str(tmp_path / "nope"), None, tmp_path)


@pytest.mark.parametrize(("master", "message"), [
    ("local[2]", "needs a cluster master"),
    ("spark://127.0.0.1:7077", "cannot run Python applications in cluster deploy mode"),
])
def test_cluster_deploy_mode_is_refused_where_spark_cannot_do_it(tmp_path: Path, master, message):
    from sparkml_ops.projects import SparkOptions, run

    with pytest.raises(BadInput, match=message):
        run(str(tmp_path / "never-read"), spark=SparkOptions(master=master, deploy_mode="cluster"))


def test_git_source_versions_and_subdirectory(git_repo, tmp_path: Path):
    url, commits = git_repo
    old = fetch(f"{url}#proj", "v1", tmp_path / "a")
    assert old.commit == commits[0] and old.directory.name == "proj"
    assert "1.0 *" in (old.directory / "log.py").read_text()
    head = fetch(f"{url}#proj", None, tmp_path / "b")
    assert head.commit == commits[1] and "2.0 *" in (head.directory / "log.py").read_text()
    with pytest.raises(BadInput, match="version 'nope' is not a commit, tag or branch"):
        fetch(url, "nope", tmp_path / "c")
    with pytest.raises(NotFound, match="subdirectory 'missing' does not exist"):
        fetch(f"{url}#missing", None, tmp_path / "d")



def test_example_workflow_project_parses():
    project = load_project(Path(__file__).resolve().parents[2] / "examples" / "workflow")
    assert sorted(project.entry_points) == ["load", "score", "train"]
    with pytest.raises(BadInput, match=r"missing required parameter\(s\) \['data'\]"):
        project.entry_point("train").resolve({}, base_dir=project.directory)
    declared, _ = project.entry_point("train").resolve({"data": "d", "reg": "0.5"}, base_dir=Path("/x"))
    assert declared == {"data": "/x/d", "reg": "0.5"}
