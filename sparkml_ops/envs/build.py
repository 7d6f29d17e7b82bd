"""Build a packed env: ``python -m venv`` + pip, made relocatable, tarred, cached by content hash.

Cache layout under ``cache_dir`` (one entry per env hash)::

    <hash>.tar.gz   the relocatable archive (what ``--archives`` ships)
    <hash>/         the same env unpacked (a local driver runs ``<hash>/bin/python``)
    <hash>.json     manifest: spec, installed distributions, build time; written last, so
                    its presence marks a complete entry
    <hash>.lock     held while building, so concurrent builders of one spec build it once
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sparkml_ops import config
from sparkml_ops.envs.pack import make_relocatable, pack, unpack
from sparkml_ops.envs.spec import Interpreter, env_hash, find_interpreter, normalise_requirements
from sparkml_ops.errors import BadInput, StorageError


@dataclass(frozen=True)
class PackedEnv:
    """A relocatable virtualenv archive and how to run it."""

    archive: Path  # relocatable .tar.gz of a virtualenv
    env_hash: str  # content hash of the spec (normalised requirements + python version)
    python: str  # interpreter path relative to the unpacked archive root, e.g. "bin/python"
    cache_hit: bool
    build_seconds: float


def default_cache_dir() -> Path:
    """``$SPARKML_OPS_ENV_CACHE`` / config ``env_cache_dir`` / ``~/.cache/sparkml_ops/envs``."""
    return Path(str(config.resolve("env_cache_dir"))).expanduser()


def manifest(env: PackedEnv) -> dict:
    """The manifest written next to the archive (spec, installed distributions, build time)."""
    path = env.archive.with_name(f"{env.env_hash}.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"manifest {path} of packed env {env.env_hash} cannot be read: {exc}") from exc


def unpacked_root(env: PackedEnv) -> Path:
    """A local unpacked copy of ``env`` (its cache entry, or unpacked from the archive on first use)."""
    root = env.archive.with_name(env.env_hash)
    if (root / env.python).exists():
        return root
    with _locked(env.archive.with_name(f"{env.env_hash}.lock")):
        if not (root / env.python).exists():
            tmp = root.with_name(f".unpack-{env.env_hash}-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            unpack(env.archive, tmp)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(tmp, root)
    return root


class _Reporter:
    def __init__(self, env_id: str, enabled: bool) -> None:
        self.prefix = f"[sparkml_ops env {env_id[:12]}]"
        self.enabled = enabled

    def __call__(self, text: str) -> None:
        if self.enabled:
            print(f"{self.prefix} {text}", file=sys.stderr, flush=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_streamed(cmd: list[str], say: _Reporter, what: str) -> None:
    """Run ``cmd``, echoing its output lines as progress; a failure carries the output's tail."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # the target env must not see the builder's path
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail.append(line)
            say(line.strip())
    if proc.wait() != 0:
        raise BadInput(f"{what} failed (exit code {proc.returncode}):\n" + "\n".join(tail))


def _pip_command(venv_python: Path) -> list[str]:
    """pip driving the target env: this interpreter's pip with ``--python`` when it has one."""
    try:
        import pip

        major, minor = (int(x) for x in pip.__version__.split(".")[:2])
        if (major, minor) >= (22, 3):
            return [sys.executable, "-m", "pip", "--python", str(venv_python)]
    except Exception:  # noqa: BLE001 - no usable pip here: bootstrap one into the env
        pass
    subprocess.run([str(venv_python), "-m", "ensurepip", "--default-pip"], check=True, capture_output=True)
    return [str(venv_python), "-m", "pip"]


def _installed(venv_python: Path) -> list[str]:
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps(sorted({d.metadata['Name'] + '==' + d.version for d in m.distributions()})))")
    out = subprocess.run([str(venv_python), "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _build(reqs: list[str], interp: Interpreter, digest: str, cache: Path, say: _Reporter) -> dict:
    work = cache / f".build-{digest}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    venv = work / "env"
    try:
        say(f"creating virtualenv with Python {interp.version} ({interp.path})")
        _run_streamed([interp.path, "-m", "venv", "--without-pip", str(venv)], say, "python -m venv")
        venv_python = venv / "bin" / "python"
        if reqs:
            req_file = work / "requirements.txt"
            req_file.write_text("\n".join(reqs) + "\n")
            say(f"installing {sum(1 for r in reqs if not r.startswith('-'))} requirement(s) with pip")
            _run_streamed([*_pip_command(venv_python), "install", "--no-input", "-r", str(req_file)], say,
                          f"pip install of {reqs}")
        installed = _installed(venv_python)
        say("making the env relocatable and packing it")
        make_relocatable(venv)
        tmp_archive = work / "env.tar.gz"
        size = pack(venv, tmp_archive)
        os.replace(tmp_archive, cache / f"{digest}.tar.gz")
        target = cache / digest
        shutil.rmtree(target, ignore_errors=True)
        os.replace(venv, target)
        return {"installed": installed, "archive_bytes": size}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_packed_env(requirements: Sequence[str], *, python_version: str | None = None,
                     cache_dir: Path | None = None, progress: bool = True) -> PackedEnv:
    """Build (or fetch from the cache) a relocatable env with ``requirements`` installed.

    ``cache_dir`` defaults to :func:`default_cache_dir`; model code passes a directory next to
    the model's artifacts. Concurrent calls for one spec build it once (file lock); a cache
    hit costs a hash and two ``stat`` calls. Progress (pip's stage lines) goes to stderr.
    """
    start = time.monotonic()
    reqs = normalise_requirements(requirements)
    interp = find_interpreter(python_version)
    digest = env_hash(reqs, interp)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    archive = cache / f"{digest}.tar.gz"
    manifest_path = cache / f"{digest}.json"

    def done(hit: bool) -> PackedEnv:
        return PackedEnv(archive=archive.resolve(), env_hash=digest, python="bin/python", cache_hit=hit,
                         build_seconds=time.monotonic() - start)

    if manifest_path.is_file() and archive.is_file():
        return done(True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"env cache directory {cache} cannot be created: {exc}") from exc
    say = _Reporter(digest, progress)
    with _locked(cache / f"{digest}.lock"):
        if manifest_path.is_file() and archive.is_file():
            say("built by another process meanwhile; using the cached archive")
            return done(True)
        built = _build(reqs, interp, digest, cache, say)
        seconds = time.monotonic() - start
        info = {"env_hash": digest, "requirements": reqs, "python": interp.version, "interpreter": interp.path,
                "build_seconds": round(seconds, 3), "built_at": time.time(), **built}
        tmp = manifest_path.with_suffix(f".json.{os.getpid()}")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, manifest_path)
        say(f"done in {seconds:.1f}s ({built['archive_bytes'] / 1e6:.1f} MB): {archive}")
    return done(False)
