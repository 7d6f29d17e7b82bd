"""What an environment is: normalised requirements, a Python interpreter, and their hash.

The hash is the cache key, so it covers everything that changes the built env: the sorted,
normalised requirement lines, the exact interpreter version and path (a packed env links to
its base interpreter), the platform, and the pack format version.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput, NotFound

PACK_FORMAT = 1  # bump when the archive layout changes; old cache entries are then ignored


def _clean_line(line: str) -> str:
    """One requirement line without comments and surrounding space ('' when nothing is left)."""
    text = line.strip()
    if text.startswith("#"):
        return ""
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def normalise_requirement(line: str) -> str:
    """Canonical form of one line: PEP 503 name, sorted extras and specifiers; other lines as written."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = _clean_line(line)
    if not text or text.startswith("-"):
        return text
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return text  # a path, URL or VCS line: pip gets it as written
    out: str = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += f" @ {req.url}"
    if req.specifier:
        out += ",".join(sorted(str(s) for s in req.specifier))
    if req.marker:
        out += f"; {req.marker}"
    return out


def normalise_requirements(requirements: Iterable[str]) -> list[str]:
    """Deduplicated, sorted canonical lines; option lines (``--index-url …``) first, in order."""
    if isinstance(requirements, str):
        raise BadInput(f"requirements must be a list of lines, got the string {requirements!r}")
    options: list[str] = []
    reqs: set[str] = set()
    for raw in requirements:
        if not isinstance(raw, str):
            raise BadInput(f"requirement {raw!r} is not a string; requirements are pip requirement lines")
        for part in raw.splitlines() or [raw]:
            line = normalise_requirement(part)
            if not line:
                continue
            if line.startswith("-"):
                if line.startswith(("-r", "--requirement", "-c", "--constraint", "-e", "--editable")):
                    raise BadInput(
                        f"requirement line {line!r} refers to another file or an editable install; "
                        "expand it first (requirements_from_model does) — a packed env must be self-contained"
                    )
                if line not in options:
                    options.append(line)
            else:
                reqs.add(line)
    return options + sorted(reqs)


def expand_requirements(lines: Iterable[str], base_dir: Path) -> list[str]:
    """Requirement lines with comments dropped, continuations joined and ``-r``/``-c`` includes
    expanded relative to ``base_dir`` (MLflow's own requirements parser)."""
    from mlflow.utils.requirements_utils import _parse_requirements

    try:
        return [r.req_str for r in _parse_requirements([str(x) for x in lines], False, base_dir=str(base_dir))]
    except FileNotFoundError as exc:
        raise NotFound(f"requirements file {exc.filename} (included from {base_dir}) does not exist") from None
    except RecursionError:
        raise BadInput(f"requirements files under {base_dir} include each other in a cycle (via -r)") from None


def read_requirements_file(path: Path) -> list[str]:
    """Lines of a requirements file with ``-r``/``-c`` includes expanded relative to it."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"requirements file {path} does not exist")
    return expand_requirements(path.read_text(encoding="utf-8").splitlines(), path.parent)


def load_yaml(path: Path) -> Any:
    """A YAML file's content ({} for an empty file); invalid YAML is a BadInput naming the file."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML: {exc}") from exc


def read_python_env(path: Path) -> dict:
    """The mapping in an MLflow ``python_env.yaml`` ({} when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return {}
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path} must be a mapping with 'python' and 'dependencies', got {type(data).__name__}")
    return data


def requirements_from_python_env(path: Path) -> tuple[list[str], str | None]:
    """(requirement lines, python version) of an MLflow ``python_env.yaml``; ``-r`` lines are expanded."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"python env file {path} does not exist")
    data = read_python_env(path)
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise BadInput(f"{path}: 'dependencies' must be a list of pip requirement lines, got {deps!r}")
    python = data.get("python")
    return expand_requirements(deps, path.parent), (str(python) if python is not None else None)


def requirements_from_model(model_dir: Path) -> list[str]:
    """The pip requirements of an MLflow model directory.

    ``requirements.txt`` wins (it is what MLflow writes and what ``python_env.yaml`` points
    to); otherwise the ``dependencies`` of ``python_env.yaml``.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise NotFound(f"model directory {model_dir} does not exist")
    req = model_dir / "requirements.txt"
    if req.is_file():
        return read_requirements_file(req)
    if (model_dir / "python_env.yaml").is_file():
        return requirements_from_python_env(model_dir / "python_env.yaml")[0]
    raise NotFound(f"model directory {model_dir} has neither requirements.txt nor python_env.yaml")


def python_version_from_model(model_dir: Path) -> str | None:
    """The Python version a model was saved with (``python_env.yaml``'s ``python``), if recorded."""
    python = read_python_env(Path(model_dir) / "python_env.yaml").get("python")
    return str(python) if python is not None else None


@dataclass(frozen=True)
class Interpreter:
    """A base (non-venv) Python interpreter a packed env links to."""

    path: str
    version: str  # "3.11.7"


def _probe(path: str) -> Interpreter | None:
    code = "import sys; print(sys._base_executable if hasattr(sys, '_base_executable') else sys.executable); " \
           "print('.'.join(map(str, sys.version_info[:3])))"
    try:
        out = subprocess.run([path, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    base, version = out.strip().splitlines()[-2:]
    return Interpreter(path=base, version=version)


def current_interpreter() -> Interpreter:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(path=base, version=".".join(map(str, sys.version_info[:3])))


def find_interpreter(python_version: str | None) -> Interpreter:
    """The base interpreter for ``python_version`` ("3.11" or "3.11.7"; None = the current one).

    Matching is on major.minor (patch releases are ABI compatible); the current interpreter
    is preferred, then ``pythonX.Y`` on PATH, then pyenv's versions.
    """
    current = current_interpreter()
    if python_version is None or str(python_version).strip() == "":
        return current
    wanted = str(python_version).strip()
    parts = wanted.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise BadInput(f"python version {wanted!r} is not of the form 3.11 or 3.11.7")
    major_minor = ".".join(parts[:2])
    if ".".join(current.version.split(".")[:2]) == major_minor:
        return current
    looked = [f"current interpreter {current.path} ({current.version})"]
    candidates = []
    exe = shutil.which(f"python{major_minor}")
    looked.append(f"python{major_minor} on PATH")
    if exe:
        candidates.append(exe)
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    looked.append(str(pyenv))
    if pyenv.is_dir():
        candidates += [str(p / "bin" / f"python{major_minor}") for p in sorted(pyenv.glob(f"{major_minor}*"))]
    for candidate in candidates:
        found = _probe(candidate)
        if found and ".".join(found.version.split(".")[:2]) == major_minor:
            return found
    raise NotFound(
        f"no Python {major_minor} interpreter found for python version {wanted!r}; looked at: {', '.join(looked)}. "
        f"Install Python {major_minor} or build with python_version=None to use the current interpreter"
    )


def env_hash(requirements: Sequence[str], interpreter: Interpreter) -> str:
    """Content hash of an env spec (24 hex chars): requirements, interpreter, platform, format."""
    spec = {
        "format": PACK_FORMAT,
        "requirements": list(requirements),
        "python": interpreter.version,
        "interpreter": interpreter.path,
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
