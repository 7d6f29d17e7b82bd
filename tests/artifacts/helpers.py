"""Small helpers shared by the artifact tests."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def random_bytes(n: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def chunk_files(location) -> list[str]:
    """Parquet files physically present in the chunk table directory."""
    directory = Path(location.table_uri("blob_chunks"))
    return sorted(p.name for p in directory.glob("*.parquet"))
