"""The ``sparkml_ops`` package as a ``--py-files`` zip, so code running in a packed env can import it.

A packed env holds the model's or project's own requirements; our Arrow scorer and lineage
helpers travel next to it instead of being installed into every env.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path


def package_zip(cache_dir: Path | None = None) -> Path:
    """A zip of the ``sparkml_ops`` package (for ``--py-files``), cached by content hash."""
    root = Path(__file__).resolve().parent.parent  # the sparkml_ops package directory
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root.parent).as_posix().encode() + b"\0" + file.read_bytes())
    target_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "sparkml_ops-pyfiles"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"sparkml_ops-{digest.hexdigest()[:16]}.zip"
    if not target.is_file():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.relative_to(root.parent).as_posix())
        os.replace(tmp, target)
    return target
