"""Settings, resolved in one place: explicit argument, environment, config file, default.

A bad value raises :class:`BadInput` naming every place that was looked at, so a user can
see which one won.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from sparkml_ops.errors import BadInput

CONF_DIR_ENV = "SPARKML_OPS_CONF_DIR"
CONF_FILE_NAME = "sparkml_ops.toml"
USER_CONF_FILE = Path("~/.config/sparkml_ops/config.toml")


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: Any
    parse: Callable[[str], Any]
    doc: str


def _parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _parse_positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _parse_json_object(text: str) -> dict[str, str]:
    value = json.loads(text) if isinstance(text, str) else text
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text!r}")
    return {str(k): str(v) for k, v in value.items()}


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("root", "SPARKML_OPS_ROOT", "~/.sparkml_ops/lake", str,
                "Tracking root used when no tracking URI names one."),
        Setting("flush_interval_ms", "SPARKML_OPS_FLUSH_INTERVAL_MS", 500, _parse_positive_int,
                "Longest time a logged value waits in the write-ahead log before its Delta commit."),
        Setting("flush_max_rows", "SPARKML_OPS_FLUSH_MAX_ROWS", 100_000, _parse_positive_int,
                "Pending rows that trigger a commit before the interval ends."),
        Setting("wal_fsync", "SPARKML_OPS_WAL_FSYNC", False, _parse_bool,
                "fsync every write-ahead-log append (survives power loss, ~100x slower)."),
        Setting("compact_min_files", "SPARKML_OPS_COMPACT_MIN_FILES", 64, _parse_positive_int,
                "Data files in a table that trigger background compaction."),
        Setting("checkpoint_interval", "SPARKML_OPS_CHECKPOINT_INTERVAL", 50, _parse_positive_int,
                "Delta commits between log checkpoints (delta.checkpointInterval)."),
        Setting("storage_options", "SPARKML_OPS_STORAGE_OPTIONS", {}, _parse_json_object,
                "JSON object passed to delta-rs for object-store roots (credentials, region)."),
        Setting("env_cache_dir", "SPARKML_OPS_ENV_CACHE", "~/.cache/sparkml_ops/envs", str,
                "Where packed Python environments are cached by content hash (when no cache dir is given)."),
        Setting("notebook_autolog", "SPARKML_OPS_NOTEBOOK_AUTOLOG", True, _parse_bool,
                "Turn on mlflow.autolog() in notebooks (sklearn, Spark ML, ... when installed)."),
        Setting("notebook_snapshot_max_bytes", "SPARKML_OPS_NOTEBOOK_SNAPSHOT_MAX_BYTES", 20_000_000,
                _parse_positive_int,
                "Cap on a notebook snapshot's outputs; larger outputs are replaced by a truncation marker."),
        Setting("notebook_path", "SPARKML_OPS_NOTEBOOK_PATH", "", str,
                "Path of the running notebook when the kernel cannot tell (nbclient, papermill runs)."),
        Setting("server_url", "SPARKML_OPS_SERVER_URL", "", str,
                "Base URL of a tracking server UI; notebook displays link runs to their page there."),
    )
}


def config_files() -> list[Path]:
    """Config files in the order they are read; later files do not override earlier ones."""
    files = []
    if os.environ.get(CONF_DIR_ENV):
        files.append(Path(os.environ[CONF_DIR_ENV]) / CONF_FILE_NAME)
    files.append(USER_CONF_FILE.expanduser())
    files.append(Path(__file__).resolve().parent.parent / "conf" / CONF_FILE_NAME)
    return files


def _file_values() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in config_files():
        if path.is_file():
            try:
                with path.open("rb") as handle:
                    found.append((path, tomllib.load(handle).get("sparkml_ops", {})))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise BadInput(f"config file {path} cannot be read: {exc}") from exc
    return found


def resolve(name: str, explicit: Any = None) -> Any:
    """Value of setting ``name``: explicit argument, then env var, then config files, then default."""
    setting, candidates, looked = _candidates(name, explicit)
    if not candidates:
        return setting.default
    where, raw = candidates[0]
    if isinstance(raw, type(setting.default)) and not isinstance(raw, str):
        return raw
    try:
        return setting.parse(raw)
    except (ValueError, TypeError) as exc:
        raise BadInput(
            f"setting {name!r} from {where} is invalid: {exc}. Looked at: {', '.join(looked)}"
        ) from exc


def is_configured(name: str) -> bool:
    """True when an environment variable or a config file sets ``name``: code with a better
    default than the setting's own (say, a directory next to the root) yields to the user's choice."""
    return bool(_candidates(name)[1])


def _candidates(name: str, explicit: Any = None) -> tuple[Setting, list[tuple[str, Any]], list[str]]:
    """(the setting, (where, raw value) in precedence order, every place looked at)."""
    setting = SETTINGS.get(name)
    if setting is None:
        raise BadInput(f"unknown setting {name!r}; known settings: {sorted(SETTINGS)}")
    looked = ["argument"]
    candidates: list[tuple[str, Any]] = []
    if explicit is not None:
        candidates.append(("argument", explicit))
    looked.append(f"${setting.env}")
    if os.environ.get(setting.env):
        candidates.append((f"${setting.env}", os.environ[setting.env]))
    for path, values in _file_values():
        looked.append(str(path))
        if name in values:
            candidates.append((str(path), values[name]))
    return setting, candidates, looked


def default_root() -> str:
    """The embedded default tracking root, as an absolute local path or object-store URI."""
    root = str(resolve("root"))
    if "://" in root:
        return root
    return str(Path(root).expanduser().resolve())


def tracking_uri(explicit: str | None = None) -> str:
    """The ``delta:`` tracking URI our CLI, jobs and quickstart use.

    Explicit argument, then ``MLFLOW_TRACKING_URI`` when it names a ``delta:`` root, then the
    ``root`` setting (``$SPARKML_OPS_ROOT``, config files, default).
    """
    if explicit:
        return explicit if explicit.startswith("delta:") else f"delta:{explicit}"
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if env.startswith("delta:"):
        return env
    root = default_root()
    return f"delta://{root}" if "://" in root else f"delta:{root}"
