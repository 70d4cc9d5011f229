"""The model store's directory and what counts as a stored model's name, in plain strings.

This is the part of :mod:`ember.store.models` a warm start needs: finding Ember's own directory (the
plugin index lives there) and telling a model path from a stored model's name. It imports
neither pathlib nor the model reader, each a few milliseconds of every start;
:mod:`ember.store.models` builds its ``Path`` API on it.
"""

from __future__ import annotations

import os
from typing import Any

HOME_ENV = "EMBER_HOME"
XDG_ENV = "XDG_CACHE_HOME"
#: The file of a stored model inside its directory: ``<dir>/<name>/model.onnx``.
MODEL_FILE = "model.onnx"

# set_store_dir's choice, absolute. Module-level on purpose: ember.set_dir is process-wide by
# definition (as torch.hub.set_dir and huggingface_hub's HF_HOME are), and every Core, the
# command line and the store functions must see the same directory without being handed it.
_chosen_dir: str | None = None


def set_store_dir(path: str | os.PathLike[str] | None) -> None:
    """Use ``path`` as the store directory in this process; ``None`` restores the rules."""
    global _chosen_dir
    _chosen_dir = None if path is None else os.path.abspath(os.path.expanduser(path))


def store_dir() -> tuple[str, str]:
    """The store directory and the rule that chose it: ``"set_dir"``, ``"EMBER_HOME"``,
    ``"XDG_CACHE_HOME"`` or ``"default"``. The environment is read on every call."""
    if _chosen_dir is not None:
        return _chosen_dir, "set_dir"
    home = os.environ.get(HOME_ENV)
    if home:
        return os.path.abspath(os.path.expanduser(home)), HOME_ENV
    xdg = os.environ.get(XDG_ENV)
    if xdg:
        return os.path.join(os.path.abspath(os.path.expanduser(xdg)), "ember"), XDG_ENV
    return os.path.expanduser(os.path.join("~", ".cache", "ember")), "default"


def is_model_name(source: Any) -> bool:
    """Whether ``source`` is read as a stored model's name rather than as a path or bytes.

    Only a ``str`` can be a name, and only when it is not an existing path, contains no path
    separator and does not end in ``.onnx``. ``pathlib.Path`` objects are always paths.
    """
    if not isinstance(source, str) or os.path.exists(source):
        return False
    separators = {"/", os.sep, os.altsep} - {None}
    return not any(sep in source for sep in separators) and not source.lower().endswith(".onnx")
