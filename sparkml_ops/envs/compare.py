"""Compare requirements with what the current interpreter has installed.

Used in interactive sessions (``env="local"``) and before running a driver outside the
packed env: the differences are warnings with exact versions, never a silent mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata

from sparkml_ops.envs.spec import normalise_requirements


# Kept instead of mlflow's _check_requirement_satisfied: it passes unparsable lines and URL requirements silently.
def compare_with_current(requirements: Sequence[str]) -> list[str]:
    """Human-readable differences between ``requirements`` and installed packages ([] when all hold).

    Lines whose marker does not apply here are ignored; lines pip alone can interpret (URLs,
    paths, options) are reported as unverifiable only when they name an uninstalled package.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    problems: list[str] = []
    for line in normalise_requirements(requirements):
        if line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{line}: cannot be checked against installed packages (not a name/version requirement)")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req.name}: required {req.specifier or '(any version)'}, not installed")
            continue
        if req.url:
            problems.append(f"{req.name}: required from {req.url}, installed {installed} (source not verified)")
        elif req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name}: required {req.specifier}, installed {installed}")
    return problems


def pinned_current(names: Iterable[str]) -> list[str]:
    """``name==version`` for each installed name (skipping missing ones): pins an env to this interpreter."""
    out = []
    for name in names:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out
