"""The MLproject format: entry points, typed parameters and command templates.

Follows MLflow's definition: ``name``, one of ``python_env`` / ``conda_env`` /
``docker_env``, and ``entry_points`` whose ``parameters`` are either a type name or a
mapping with ``type`` and ``default``. A directory without an MLproject file runs a ``.py``
or ``.sh`` file named as the entry point. Every check here runs before anything is built
or submitted, and names the parameter at fault.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparkml_ops.envs.spec import load_yaml
from sparkml_ops.errors import BadInput, NotFound

ParamType = Literal["string", "float", "int", "path", "uri"]
PARAM_TYPES: tuple[str, ...] = ("string", "float", "int", "path", "uri")
EnvKind = Literal["python_env", "conda_env", "docker_env", "none"]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, value: Any, *, base_dir: Path) -> str:
        """The value as it goes into the command (validated; paths made absolute)."""
        text = str(value)
        if self.type == "float":
            try:
                number = float(text)
            except ValueError:
                raise BadInput(f"parameter {self.name!r} must be a float, got {text!r}") from None
            if math.isnan(number):
                raise BadInput(f"parameter {self.name!r} must be a float, got {text!r}")
            return text
        if self.type == "int":
            try:
                int(text)
            except ValueError:
                raise BadInput(f"parameter {self.name!r} must be an int, got {text!r}") from None
            return text
        if self.type == "path":
            if "://" in text and not text.startswith("file://"):
                raise BadInput(f"parameter {self.name!r} is a path and must be a local path, got {text!r}; "
                               "declare it as type 'uri' to pass a remote location through unchanged")
            local = text[len("file://"):] if text.startswith("file://") else text
            return str((base_dir / Path(local).expanduser()).resolve())
        if self.type == "uri":
            if "://" not in text and not text.startswith(("s3:", "gs:", "dbfs:", "hdfs:", "abfss:")):
                return str((base_dir / Path(text).expanduser()).resolve())
            return text
        return text


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def resolve(self, given: dict[str, Any], *, base_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
        """(declared parameters with defaults filled in, extra parameters), all validated as strings."""
        missing = [p.name for p in self.parameters.values() if p.required and given.get(p.name) is None]
        if missing:
            raise BadInput(f"entry point {self.name!r} is missing required parameter(s) {missing}; "
                           f"pass them with -P {missing[0]}=VALUE")
        declared: dict[str, str] = {}
        for param in self.parameters.values():
            value = given.get(param.name, param.default)
            if value is None:
                continue
            declared[param.name] = param.convert(value, base_dir=base_dir)
        extra = {str(k): str(v) for k, v in given.items() if k not in self.parameters and v is not None}
        return declared, extra

    def command_line(self, declared: dict[str, str], extra: dict[str, str]) -> str:
        """The command with ``{param}`` placeholders filled (shell-quoted) and extras as ``--k v``."""
        quoted = {k: shlex.quote(v) for k, v in declared.items()}
        try:
            command = self.command.format(**quoted)
        except KeyError as exc:
            raise BadInput(f"command of entry point {self.name!r} uses {{{exc.args[0]}}}, which is not a declared "
                           f"parameter; declared: {sorted(self.parameters)}") from None
        except (IndexError, ValueError) as exc:
            raise BadInput(f"command of entry point {self.name!r} is not a valid template: {exc}") from None
        for key, value in extra.items():
            command += f" --{shlex.quote(key)} {shlex.quote(value)}"
        return command


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str
    env_kind: str
    env_spec: Any  # a file path for python_env/conda_env, the docker_env mapping, or None
    entry_points: dict[str, EntryPoint]

    def entry_point(self, name: str) -> EntryPoint:
        if name in self.entry_points:
            return self.entry_points[name]
        candidate = (self.directory / name)
        if name.endswith((".py", ".sh")) and candidate.is_file():
            runner = "python" if name.endswith(".py") else os.environ.get("SHELL", "bash")
            return EntryPoint(name=name, command=f"{runner} {shlex.quote(name)}")
        known = sorted(self.entry_points) or ["<a .py or .sh file of the project>"]
        raise NotFound(f"entry point {name!r} is not in project {self.name!r} ({self.directory}); "
                       f"known entry points: {known}")


def _parse_parameter(entry: str, name: str, spec: Any) -> Parameter:
    if isinstance(spec, str):
        kind, default = spec, None
    elif isinstance(spec, dict):
        kind, default = spec.get("type", "string"), spec.get("default")
    else:
        raise BadInput(f"parameter {name!r} of entry point {entry!r} must be a type name or a mapping with "
                       f"'type' and 'default', got {spec!r}")
    if kind not in PARAM_TYPES:
        raise BadInput(f"parameter {name!r} of entry point {entry!r} has type {kind!r}; "
                       f"allowed types: {list(PARAM_TYPES)}")
    param = Parameter(name=str(name), type=kind, default=None if default is None else str(default))
    return param


def _find_mlproject(directory: Path) -> Path | None:
    for candidate in ("MLproject", "mlproject", "MLProject"):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


# Kept instead of mlflow.projects._project_spec.load_project: that validates nothing (a malformed file
# raises AttributeError, int/float values are never checked, unknown types pass) and downloads remote paths.
def load_project(directory: Path) -> Project:
    """Parse ``directory``'s MLproject file, or describe a directory without one."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise NotFound(f"project directory {directory} does not exist")
    path = _find_mlproject(directory)
    if path is None:
        kind, spec = _default_env(directory)
        return Project(directory, directory.name, kind, spec, {})
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path} must be a mapping with 'name' and 'entry_points'")
    envs = [k for k in ("python_env", "conda_env", "docker_env") if k in data]
    if len(envs) > 1:
        raise BadInput(f"{path} declares {envs}; a project has at most one of python_env, conda_env, docker_env")
    if envs:
        kind = envs[0]
        spec = data[kind]
        if kind != "docker_env":
            spec = directory / str(spec)
            if not spec.is_file():
                raise NotFound(f"{path}: {kind} file {spec} does not exist")
    else:
        kind, spec = _default_env(directory)
    entry_points: dict[str, EntryPoint] = {}
    raw_entries = data.get("entry_points") or {}
    if not isinstance(raw_entries, dict):
        raise BadInput(f"{path}: entry_points must be a mapping of name -> {{command, parameters}}")
    for name, entry in raw_entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
            raise BadInput(f"{path}: entry point {name!r} needs a 'command' string")
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadInput(f"{path}: parameters of entry point {name!r} must be a mapping")
        entry_points[str(name)] = EntryPoint(
            name=str(name), command=entry["command"],
            parameters={str(k): _parse_parameter(str(name), str(k), v) for k, v in params.items()},
        )
    return Project(directory, str(data.get("name") or directory.name), kind, spec, entry_points)


def _default_env(directory: Path) -> tuple[str, Any]:
    """MLflow's fallbacks for a project that names no environment."""
    if (directory / "python_env.yaml").is_file():
        return "python_env", directory / "python_env.yaml"
    if (directory / "conda.yaml").is_file():
        return "conda_env", directory / "conda.yaml"
    if (directory / "requirements.txt").is_file():
        return "python_env", directory / "requirements.txt"
    return "none", None
