"""What build of Ember is running: when it can be known, its git commit.

It goes into every kernel's cache blob id and the key of every plan entry (oneDNN puts its
version and git hash in its cache blob ids); the versions of Ember and of the plugin are in the
core's entry key already (``KernelCache.key``), so that binaries and plans built by one build of
Ember are never used by another. The commit is read
from the git checkout Ember is imported from (an editable install, as in this repository), by
reading ``.git`` directly: no ``git`` process, a few file reads, once per process.

When no commit can be found (an install from a wheel or an sdist, a checkout without ``.git``),
the id says ``unknown``: two builds with the same version then share ids. oneDNN warns that this
may fetch a wrong blob. For Ember it cannot: the id also holds a digest of the kernel's complete
OpenCL source and build options, and a blob holds nothing but the driver's binary of exactly that
source; how the kernels are launched is not in the blob, it is derived from the same source.
Uncommitted edits are likewise covered by the source digest, and the plugin's own version is
added to the entry key by the core.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

UNKNOWN = "unknown"
_HEX = frozenset("0123456789abcdef")


def plugin_version() -> str:
    from ember_gpu import __version__

    return __version__


@cache
def ember_git_commit() -> str | None:
    """The commit of the git checkout the ``ember`` package is imported from, or None."""
    import ember

    start = Path(ember.__file__).resolve().parent
    for directory in (start, *start.parents):
        marker = directory / ".git"
        try:
            if marker.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = marker.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                return _head(Path(directory, text.partition(":")[2].strip()))
            if marker.is_dir():
                return _head(marker)
        except OSError:
            return None
    return None


def _is_sha(text: str) -> bool:
    return len(text) == 40 and _HEX.issuperset(text)  # no regex: a warm start compiles none


def _head(git_dir: Path) -> str | None:
    head = (git_dir / "HEAD").read_text().strip()
    if _is_sha(head):
        return head  # detached
    if not head.startswith("ref:"):
        return None
    ref = head.partition(":")[2].strip()
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():  # worktrees keep their refs in the main repository
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        path = base / ref
        if path.is_file():
            value = path.read_text().strip()
            return value if _is_sha(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _is_sha(sha):
                return sha
    return None


@cache
def code_identity() -> str:
    """A digest of the sizes and modification times of ember_gpu's own source files.

    A plan entry depends on the code that lowered it, and in a checkout that code may differ
    from the commit (uncommitted edits): this keeps such plans apart, for the cost of a
    ``stat`` per file once per process. A kernel binary needs no such thing (its key holds its
    source's digest).
    """
    import blake3

    parts = []
    pending = [os.path.dirname(os.path.abspath(__file__))]
    while pending:  # os.scandir: a few times faster than Path.rglob, and this is a warm start
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir() and entry.name != "__pycache__":
                    pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    stat = entry.stat()
                    parts.append(f"{entry.path}:{stat.st_size}:{stat.st_mtime_ns}")
    return blake3.blake3("\n".join(sorted(parts)).encode()).hexdigest()[:32]


def build_identity() -> dict[str, str]:
    """What a cache blob id adds to the core's entry key, which already holds Ember's and the
    plugin's versions: the git commit."""
    return {"ember_git": ember_git_commit() or UNKNOWN}
