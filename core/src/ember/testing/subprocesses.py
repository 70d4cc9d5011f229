"""The ``PYTHONPATH`` of a subprocess a test starts: the tree under test first.

A test that lays a plugin out in a directory of its own and starts ``python`` with that directory
on ``PYTHONPATH`` must still run the Ember it is testing: the source tree this process imported
(a checkout run with ``PYTHONPATH=core/src``, or a mutation tool's copy of it), not whatever
Ember is installed in the environment.
"""

from __future__ import annotations

import os
import sys


def tree_under_test() -> list[str]:
    """The directories this process imported ``ember`` and its plugins (``ember_*``) from."""
    places: list[str] = []
    for name, module in list(sys.modules.items()):
        if name != "ember" and not (name.startswith("ember_") and "." not in name):
            continue
        package = getattr(module, "__file__", None)
        if package is None:
            continue
        root = os.path.dirname(os.path.dirname(os.path.abspath(package)))
        if root not in places:
            places.append(root)
    return places


def pythonpath(*first: str | os.PathLike[str]) -> str:
    """``first``, then the tree under test, then this process's own ``PYTHONPATH``."""
    entries = [os.fspath(path) for path in first]
    entries += tree_under_test()
    entries += [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    seen: set[str] = set()
    return os.pathsep.join(e for e in entries if not (e in seen or seen.add(e)))
