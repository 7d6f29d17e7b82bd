"""A project's Python environment: packed virtualenv (default), conda, or the current Python.

``virtualenv``: ``python_env.yaml`` / ``requirements.txt`` (or a ``conda.yaml`` translated to
pip) is built with :mod:`sparkml_ops.envs` and shipped to executors. The client-mode driver
runs that env's Python too, with the submitting interpreter's site-packages appended *after*
the env's own (so the project's pinned packages win, and ``mlflow``/``sparkml_ops`` are there
to log to the ``delta:`` root without bloating every env). ``local``: driver and executors
run the current interpreter. ``conda``: ``conda`` + ``conda-pack`` when both are on PATH.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import site
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparkml_ops.envs import (
    PackedEnv,
    build_packed_env,
    compare_with_current,
    default_cache_dir,
    read_requirements_file,
    requirements_from_python_env,
)
from sparkml_ops.envs.spec import expand_requirements, load_yaml
from sparkml_ops.errors import BadInput, NotFound, NotSupported
from sparkml_ops.projects.mlproject import Project

EnvManager = Literal["virtualenv", "local", "conda"]
ENV_MANAGERS: tuple[str, ...] = ("virtualenv", "local", "conda")

_CONDA_ONLY = {
    "blas", "bzip2", "ca-certificates", "cudatoolkit", "cudnn", "gcc", "gxx", "ld_impl_linux-64", "mkl",
    "mkl-service", "nccl", "ncurses", "nodejs", "openblas", "openjdk", "openssl", "r-base", "readline",
    "sqlite", "tk", "xz", "zlib",
}
_PIP_TOOLS = {"pip", "setuptools", "wheel"}


@dataclass(frozen=True)
class ProjectEnv:
    manager: str
    packed: PackedEnv | None  # None with the local manager
    driver_python: str  # the interpreter a client-mode driver runs
    fallback_site: list[str] = field(default_factory=list)  # appended to the driver's sys.path
    requirements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def env_hash(self) -> str:
        return self.packed.env_hash if self.packed else "local"


def _is_conda_only(name: str) -> bool:
    lowered = name.lower()
    return lowered in _CONDA_ONLY or lowered.startswith(("lib", "_", "r-", "cuda"))


def translate_conda(path: Path) -> tuple[list[str], str | None, list[str]]:
    """(pip requirements, python version, conda-only dependencies) of a conda environment file."""
    data = load_yaml(path)
    deps = (data.get("dependencies") or []) if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise BadInput(f"{path}: 'dependencies' must be a list")
    pip_reqs: list[str] = []
    python: str | None = None
    conda_only: list[str] = []
    for dep in deps:
        if isinstance(dep, dict):
            pip_reqs.extend(expand_requirements(dep.get("pip") or [], Path(path).parent))
            continue
        text = str(dep).strip().split("::")[-1]
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", text)
        if not match:
            raise BadInput(f"{path}: conda dependency {dep!r} is not 'name[spec]'")
        name, spec = match.group(1), match.group(2).replace(" ", "")
        if name.lower() == "python":
            python = re.sub(r"^[=<>!~]+", "", spec).split("=")[0].rstrip(".*") or None
        elif name.lower() in _PIP_TOOLS:
            continue
        elif _is_conda_only(name):
            conda_only.append(text)
        elif spec.startswith("=") and not spec.startswith("=="):
            version = spec[1:].split("=")[0]
            pip_reqs.append(f"{name}=={version}" if version.endswith("*") else f"{name}=={version}.*")
        elif spec.startswith("=="):
            pip_reqs.append(f"{name}=={spec[2:].split('=')[0]}")  # drop a conda build string
        elif spec[:1].isdigit():
            pip_reqs.append(f"{name}=={spec}")
        else:
            pip_reqs.append(f"{name}{spec}")
    return pip_reqs, python, conda_only


def project_requirements(project: Project) -> tuple[list[str], str | None]:
    """(pip requirements, python version) the project declares; conda files are translated."""
    if project.env_kind == "docker_env":
        raise NotSupported(
            f"project {project.name!r} uses docker_env, which the spark-submit backend does not support; "
            "declare a python_env (python_env.yaml) instead, or run it with MLflow's docker backend"
        )
    if project.env_kind == "none":
        return [], None
    path = Path(project.env_spec)
    if project.env_kind == "conda_env":
        reqs, python, conda_only = translate_conda(path)
        if conda_only:
            raise NotSupported(
                f"conda env {path} cannot be built here: 'conda' and 'conda-pack' are not on PATH and these "
                f"dependencies only conda provides: {conda_only}. The pip-installable part is {reqs}; "
                "move it to a python_env.yaml, or install conda and conda-pack"
            )
        return reqs, python
    if path.name.endswith((".yaml", ".yml")):
        return requirements_from_python_env(path)
    return read_requirements_file(path), None


def _client_site() -> list[str]:
    dirs = [*site.getsitepackages()]
    user = site.getusersitepackages()
    if isinstance(user, str) and Path(user).is_dir():
        dirs.append(user)
    return [d for d in dirs if Path(d).is_dir()]


def _conda_available() -> bool:
    return bool(shutil.which("conda") and shutil.which("conda-pack"))


def _build_conda(path: Path, cache_dir: Path, progress: bool) -> PackedEnv:
    """conda env create + conda-pack, cached by the file's content hash."""
    start = time.monotonic()
    digest = "conda-" + hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    archive = cache_dir / f"{digest}.tar.gz"
    if archive.is_file():
        return PackedEnv(archive, digest, "bin/python", True, time.monotonic() - start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    prefix = cache_dir / digest
    out = None if progress else subprocess.DEVNULL
    for cmd in (["conda", "env", "create", "--yes", "--prefix", str(prefix), "--file", str(path)],
                ["conda-pack", "--prefix", str(prefix), "--output", str(archive), "--force"]):
        if subprocess.run(cmd, stdout=out, stderr=sys.stderr if progress else out).returncode != 0:
            raise BadInput(f"{' '.join(cmd[:3])} failed for {path}")
    return PackedEnv(archive, digest, "bin/python", False, time.monotonic() - start)


def prepare_env(project: Project, env_manager: str | None = None, *, cache_dir: Path | None = None,
                progress: bool = True) -> ProjectEnv:
    """Build (or reuse) the project's environment for ``env_manager`` (default: virtualenv)."""
    manager = env_manager or ("conda" if project.env_kind == "conda_env" and _conda_available() else "virtualenv")
    if manager not in ENV_MANAGERS:
        raise BadInput(f"env manager {manager!r} is not one of {list(ENV_MANAGERS)}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if manager == "conda":
        if project.env_kind != "conda_env":
            raise BadInput(f"env manager 'conda' needs a conda_env project; {project.name!r} has {project.env_kind}")
        if not _conda_available():
            raise NotFound("env manager 'conda' needs 'conda' and 'conda-pack' on PATH; neither was found")
        packed = _build_conda(Path(project.env_spec), cache, progress)
        return ProjectEnv("conda", packed, str(_unpacked(packed)), [], [], [])
    reqs, python = project_requirements(project)
    if manager == "local":
        return ProjectEnv("local", None, sys.executable, [], reqs, compare_with_current(reqs))
    packed = build_packed_env(reqs, python_version=python, cache_dir=cache, progress=progress)
    from sparkml_ops.envs import manifest

    version = str(manifest(packed).get("python", ""))
    same_minor = version.split(".")[:2] == [str(v) for v in sys.version_info[:2]]
    warnings = [] if same_minor else [
        f"the env runs Python {version}, this client {sys.version.split()[0]}: the driver cannot borrow this "
        "client's mlflow/sparkml_ops, so list mlflow-skinny and sparkml_ops in the project's requirements"
    ]
    return ProjectEnv("virtualenv", packed, str(_unpacked(packed)), _client_site() if same_minor else [],
                      reqs, warnings)


def _unpacked(packed: PackedEnv) -> Path:
    from sparkml_ops.envs import unpacked_root

    return unpacked_root(packed) / packed.python


def describe(env: ProjectEnv) -> dict[str, Any]:
    return {"manager": env.manager, "env_hash": env.env_hash, "requirements": env.requirements}
