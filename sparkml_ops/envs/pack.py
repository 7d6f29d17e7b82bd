"""Make a built virtualenv relocatable and pack it into a ``.tar.gz``.

A venv is tied to where it was built in three places, fixed here: console scripts carry an
absolute shebang (rewritten to a ``/bin/sh`` trampoline that finds ``python`` beside the
script), ``bin/activate`` hard-codes ``VIRTUAL_ENV`` (rewritten to derive it from its own
location; csh/fish/PowerShell variants are dropped), and ``.pth`` files may name the build
directory (rewritten relative). ``bin/python`` stays a symlink to the *base* interpreter:
the archive runs wherever that interpreter exists at the same path (true for every machine
built from the same image; see README "Packed environments").
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

_TRAMPOLINE = (
    b"#!/bin/sh\n"
    b"'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/python\" \"$0\" \"$@\"\n"
    b"' '''\n"
)
_ACTIVATE_ROOT = 'VIRTUAL_ENV="$(cd "$(dirname -- "${BASH_SOURCE[0]:-$0}")/.." && pwd)"'


def _rewrite_scripts(venv: Path) -> None:
    prefix = str(venv).encode()
    for path in sorted((venv / "bin").iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        if path.name in ("activate.csh", "activate.fish", "Activate.ps1"):
            path.unlink()
            continue
        data = path.read_bytes()
        if path.name == "activate":
            lines = data.decode().splitlines(keepends=True)
            out = [(_ACTIVATE_ROOT + "\n") if ln.lstrip().startswith("VIRTUAL_ENV=") else ln for ln in lines]
            path.write_text("".join(out))
            continue
        if data.startswith(b"#!") and prefix in data.split(b"\n", 1)[0]:
            body = data.split(b"\n", 1)[1] if b"\n" in data else b""
            path.write_bytes(_TRAMPOLINE + body)


def _rewrite_pth(venv: Path) -> None:
    prefix = str(venv)
    for pth in venv.glob("lib*/python*/site-packages/*.pth"):
        text = pth.read_text(encoding="utf-8", errors="replace")
        if prefix not in text:
            continue
        lines = []
        for line in text.splitlines():
            if line.startswith(prefix):
                line = os.path.relpath(line, pth.parent)
            lines.append(line)
        pth.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _clean_cfg(venv: Path) -> None:
    cfg = venv / "pyvenv.cfg"
    lines = [ln for ln in cfg.read_text().splitlines() if not ln.startswith("command")]
    cfg.write_text("\n".join(lines) + "\n")


def make_relocatable(venv: Path) -> None:
    """Remove every reference to the venv's own absolute path (see module docstring)."""
    venv = Path(venv)
    _rewrite_scripts(venv)
    _rewrite_pth(venv)
    _clean_cfg(venv)


def pack(venv: Path, archive: Path, *, compresslevel: int = 1) -> int:
    """Write ``venv``'s contents (not the directory itself) to ``archive``; returns its size in bytes.

    The archive root is the env root, so ``--archives env.tar.gz#environment`` gives
    ``./environment/bin/python``. Symlinks are kept as symlinks.
    """
    venv = Path(venv)
    with tarfile.open(archive, "w:gz", compresslevel=compresslevel) as tar:
        for path in sorted(venv.iterdir()):
            tar.add(path, arcname=path.name, recursive=True)
    return archive.stat().st_size


def unpack(archive: Path, dest: Path) -> None:
    """Unpack an archive made by :func:`pack` (trusted: we built it) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(dest, filter="fully_trusted")  # keeps the absolute base-interpreter symlink
        else:  # Python < 3.10.12 / 3.11.4 has no filters
            tar.extractall(dest)
