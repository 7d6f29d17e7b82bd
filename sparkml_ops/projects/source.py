"""Project sources: a local directory or a git repository (``URL[#subdirectory]``, ``--version``).

Git goes through the ``git`` command (any URL it understands: ``file://``, ``https://``,
``ssh``). The fetched source records the exact commit, so a run can be rebuilt later.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sparkml_ops.errors import BadInput, NotFound

_GIT_URL = re.compile(r"^(git\+)?(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class Source:
    uri: str  # as the user gave it
    directory: Path  # the project directory (subdirectory applied)
    repo_url: str | None  # git remote/URL when known
    commit: str | None
    subdirectory: str
    dirty: bool = False  # local git working tree with uncommitted changes
    repo_subdirectory: str = ""  # the project's path inside its repository (for rebuilds)


def split_uri(uri: str) -> tuple[str, str]:
    """``URL#sub/dir`` -> (URL, 'sub/dir'); the subdirectory must stay inside the repository."""
    base, _, sub = uri.partition("#")
    sub = sub.strip("/")
    if sub and (Path(sub).is_absolute() or ".." in Path(sub).parts):
        raise BadInput(f"subdirectory {sub!r} in {uri!r} must be a relative path inside the project")
    return base, sub


def is_git_uri(uri: str) -> bool:
    base, _ = split_uri(uri)
    return bool(_GIT_URL.match(base)) or base.endswith(".git")


def _git(args: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise NotFound("the 'git' command is not installed; it is needed for git project URIs") from None
    if proc.returncode != 0:
        raise BadInput(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def _local_git_info(directory: Path) -> tuple[str | None, str | None, bool]:
    """(repo URL or path, commit, dirty) when ``directory`` is inside a git work tree."""
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd=directory)
        commit = _git(["rev-parse", "HEAD"], cwd=directory)
    except (BadInput, NotFound):
        return None, None, False
    dirty = bool(_git(["status", "--porcelain", "--", "."], cwd=directory))
    return top, commit, dirty


def fetch(uri: str, version: str | None, workdir: Path) -> Source:
    """Resolve ``uri`` to a local project directory (cloning git sources into ``workdir``)."""
    if not isinstance(uri, str) or not uri.strip():
        raise BadInput(f"project URI {uri!r} must be a non-empty path or git URL")
    base, sub = split_uri(uri.strip())
    if is_git_uri(uri):
        from git.exc import GitCommandError
        from mlflow.exceptions import ExecutionException
        from mlflow.projects.utils import _fetch_git_repo

        url = base[len("git+"):] if base.startswith("git+") else base
        target = workdir / "source"
        try:  # MLflow's own fetch: a shallow fetch of the version (or the HEAD branch), submodules too
            _fetch_git_repo(url, version, str(target))
        except ExecutionException as exc:
            raise BadInput(f"version {version!r} is not a commit, tag or branch of {url}: {exc.message}"
                           if version else f"git repository {url} cannot be fetched: {exc.message}") from None
        except GitCommandError as exc:
            raise BadInput(f"git repository {url} cannot be fetched: {exc}") from None
        commit = _git(["rev-parse", "HEAD"], cwd=target)
        directory = target / sub if sub else target
        if not directory.is_dir():
            raise NotFound(f"subdirectory {sub!r} does not exist in {url} at {version or 'HEAD'}")
        return Source(uri=uri, directory=directory, repo_url=url, commit=commit, subdirectory=sub,
                      repo_subdirectory=sub)
    local = Path(base).expanduser().resolve()
    if version:
        raise BadInput(f"--version {version!r} needs a git URI; {uri!r} is a local directory "
                       f"(use file://{local} to run a commit of a local repository)")
    directory = local / sub if sub else local
    if not directory.is_dir():
        raise NotFound(f"project directory {directory} does not exist")
    repo, head, dirty = _local_git_info(directory)
    inside = str(directory.relative_to(Path(repo).resolve())) if repo else ""
    return Source(uri=uri, directory=directory, repo_url=repo, commit=head, subdirectory=sub, dirty=dirty,
                  repo_subdirectory="" if inside == "." else inside)
