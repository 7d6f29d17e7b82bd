"""Every setting, in one spec with sections, resolved in one place: explicit argument,
environment variable, config files (``$SPARKML_OPS_CONF_DIR``, the user's, then ``conf/``),
default.

A bad value raises :class:`BadInput` naming every place that was looked at, so a user can
see which one won. The README's settings table is generated from :data:`SETTINGS`
(:func:`settings_table`); a test keeps the two equal.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomllib

from sparkml_ops.errors import BadInput

CONF_DIR_ENV = "SPARKML_OPS_CONF_DIR"
CONF_FILE_NAME = "sparkml_ops.toml"
USER_CONF_FILE = Path("~/.config/sparkml_ops/config.toml")


Section = Literal["tracking", "environments", "models", "serving", "server", "notebook", "projects"]


@dataclass(frozen=True)
class Setting:
    """One setting: its section (a ``[sparkml_ops.<section>]`` table in a config file), its
    environment variable, default, parser and the meaning shown in the README."""

    section: Section
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


def _parse_non_negative(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise ValueError(f"expected a number >= 0, got {text!r}")
        return value

    return parse


def _parse_json(kind: type) -> Callable[[Any], Any]:
    def parse(text: Any) -> Any:
        value = json.loads(text) if isinstance(text, str) else text
        if not isinstance(value, kind):
            raise ValueError(f"expected a JSON {'object' if kind is dict else 'list'}, got {str(text)[:80]!r}")
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    return parse


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("tracking", "root", "SPARKML_OPS_ROOT", "~/.sparkml_ops/lake", str,
                "the root used when no tracking URI names one (`MLFLOW_TRACKING_URI=delta:…` wins over it for "
                "our CLI and jobs)"),
        Setting("tracking", "flush_interval_ms", "SPARKML_OPS_FLUSH_INTERVAL_MS", 500, _parse_positive_int,
                "longest time a logged value waits before its Delta commit"),
        Setting("tracking", "flush_max_rows", "SPARKML_OPS_FLUSH_MAX_ROWS", 100_000, _parse_positive_int,
                "pending rows that trigger a commit early"),
        Setting("tracking", "wal_fsync", "SPARKML_OPS_WAL_FSYNC", False, _parse_bool,
                "fsync each log append (survives power loss, not just process death; much slower)"),
        Setting("tracking", "recovery_interval_ms", "SPARKML_OPS_RECOVERY_INTERVAL_MS", 1000, _parse_positive_int,
                "how often a process with a root open looks for dead writers' logs to replay"),
        Setting("tracking", "compact_min_files", "SPARKML_OPS_COMPACT_MIN_FILES", 64, _parse_positive_int,
                "data files in a table that trigger background compaction"),
        Setting("tracking", "checkpoint_interval", "SPARKML_OPS_CHECKPOINT_INTERVAL", 50, _parse_positive_int,
                "commits between Delta log checkpoints (for new tables)"),
        Setting("tracking", "storage_options", "SPARKML_OPS_STORAGE_OPTIONS", {}, _parse_json(dict),
                "JSON object of delta-rs storage options for object-store roots"),
        Setting("tracking", "wal_dir", "SPARKML_OPS_WAL_DIR", "~/.cache/sparkml_ops/wal", str,
                "local directory for the write-ahead logs of object-store roots (a local root keeps them "
                "in `<root>/_wal`)"),
        Setting("environments", "env_cache_dir", "SPARKML_OPS_ENV_CACHE", "~/.cache/sparkml_ops/envs", str,
                "cache of packed Python environments (when unset, model envs of a local root go to `<root>/envs`)"),
        Setting("models", "allow_pickle", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", False, _parse_bool,
                "let our Spark workers (and MLflow) load pickle/cloudpickle-format models; MLflow's own variable"),
        Setting("serving", "serve_max_batch_rows", "SPARKML_OPS_SERVE_MAX_BATCH_ROWS", 512, _parse_positive_int,
                "`models serve`: most rows scored in one micro-batch"),
        Setting("serving", "serve_max_wait_ms", "SPARKML_OPS_SERVE_MAX_WAIT_MS", 0.0, _parse_non_negative(float),
                "`models serve`: longest a request waits for a batch to fill (0: batch only what is queued)"),
        Setting("serving", "serve_max_body_bytes", "SPARKML_OPS_SERVE_MAX_BODY_BYTES", 64 * 1024 * 1024,
                _parse_positive_int, "`models serve`: largest request body; bigger ones get 413"),
        Setting("serving", "serve_graceful_timeout_s", "SPARKML_OPS_SERVE_GRACEFUL_TIMEOUT_S", 30,
                _parse_non_negative(int), "`models serve`: seconds in-flight requests get after SIGTERM"),
        Setting("server", "admin_password", "SPARKML_OPS_ADMIN_PASSWORD", "", str,
                "`server --auth`: the first admin's password on a root without users (or `--admin-password-file`)"),
        Setting("notebook", "notebook_autolog", "SPARKML_OPS_NOTEBOOK_AUTOLOG", True, _parse_bool,
                "`mlflow.autolog()` in notebooks (`%sparkml_ops autolog off` switches it in one)"),
        Setting("notebook", "notebook_snapshot_max_bytes", "SPARKML_OPS_NOTEBOOK_SNAPSHOT_MAX_BYTES", 20_000_000,
                _parse_positive_int,
                "cap on a notebook snapshot's outputs; beyond it the largest are replaced by a marker"),
        Setting("notebook", "notebook_path", "SPARKML_OPS_NOTEBOOK_PATH", "", str,
                "the notebook's path when the kernel cannot tell (nbclient, papermill)"),
        Setting("notebook", "server_url", "SPARKML_OPS_SERVER_URL", "", str,
                "base URL of a tracking UI; notebook displays link runs to their page"),
        Setting("projects", "pin_inputs", "SPARKML_OPS_PIN_INPUTS", [], _parse_json(list),
                "set by `sparkml-ops rebuild` for the job: the pinned Delta input versions (JSON list)"),
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
        return copy.copy(setting.default)  # a caller may change a list or dict it was given
    where, raw = candidates[0]
    if isinstance(raw, type(setting.default)) and not isinstance(raw, (str, list, dict)):
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
        section = values.get(setting.section)
        if isinstance(section, dict) and name in section:
            candidates.append((f"{path} [sparkml_ops.{setting.section}]", section[name]))
        elif name in values:
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


def settings_table() -> str:
    """The README's settings table (Markdown), generated from :data:`SETTINGS`."""

    def shown(value: Any) -> str:
        return "(none)" if value == "" else f"`{json.dumps(value) if not isinstance(value, str) else value}`"

    lines = ["| section | setting | environment variable | default | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS.values():
        lines.append(f"| {s.section} | `{s.name}` | `{s.env}` | {shown(s.default)} | {s.doc} |")
    return "\n".join(lines) + "\n"
