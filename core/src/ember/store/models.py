"""The model store: ONNX models kept locally by name, with tfimm's cache-directory rules.

Applications that run offline keep their models in one directory, the *store*, and name them::

    ember.save_model("ppocr-cls", "downloads/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    compiled = ember.Core().compile_model("ppocr-cls", "CPU")

The store directory is the first of (see :func:`get_dir`):

1. what :func:`set_dir` set in this process;
2. ``$EMBER_HOME``;
3. ``$XDG_CACHE_HOME/ember`` when ``XDG_CACHE_HOME`` is set (and not empty);
4. ``~/.cache/ember``.

Layout of a store directory (every model name is checked by :func:`validate_model_name`, so a
name can never reach outside it or collide with Ember's own files)::

    <dir>/<name>/model.onnx    a stored model (save_model writes it atomically)
    <dir>/.locations.json      locations set with set_model_cache: {"version": 1, "locations": {}}
    <dir>/.locations.lock      serialises writers of .locations.json across processes
    <dir>/compiled/            where the ``ember`` command line caches compiled models by default

A model can also live anywhere else: :func:`set_model_cache` records its location (persisted in
``.locations.json``, JSON written atomically, never pickled), and that location is looked at
before the store directory. Nothing read from the store is unpickled or evaluated.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.common import safe_json
from ember.errors import BlobFormatError, EmberError, InvalidModelError, ModelNotFoundError
from ember.model.model import Model, read_model
from ember.store.atomic import write_inside

# The directory rules and model names live in ember.store.paths (a warm start reads them without
# pathlib); this module is their public face.
from ember.store.paths import (  # noqa: F401 (re-exported)
    HOME_ENV,
    MODEL_FILE,
    XDG_ENV,
    is_model_name,
    set_store_dir,
    store_dir,
)

if TYPE_CHECKING:
    import onnx

# onnx and filelock are imported where they are used: ``import ember`` stays light, and resolving
# a name on a warm start needs neither.

#: The subdirectory of the store that the command line uses as its model cache by default.
COMPILED_DIR = "compiled"
LOCATIONS_FILE = ".locations.json"
_LOCATIONS_LOCK = ".locations.lock"
_LOCATIONS_VERSION = 1
_LOCATIONS_MAX = 16 << 20
_LOCK_TIMEOUT = 60.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: Names that would collide with the store's own directories.
RESERVED_NAMES = frozenset({COMPILED_DIR})

class ModelNameError(InvalidModelError):
    """A string that is not a valid model name (path traversal, absolute, empty, ...)."""

    def __init__(self, name: str, reason: str) -> None:
        self.source = name
        self.reason = reason
        super(InvalidModelError, self).__init__(f"invalid model name {name!r}: {reason}")


class StoreFileError(EmberError, ValueError):
    """A file of the store directory (``.locations.json``) that cannot be read: the message
    names it and says to fix or delete it."""


class StoredModelNotFoundError(ModelNotFoundError):
    """A model name found nowhere; the message lists every place that was looked at."""

    def __init__(self, name: str, looked: list[str]) -> None:
        self.path = name
        self.name = name
        self.looked = looked
        super(ModelNotFoundError, self).__init__(
            f"model {name!r} not found; looked for {'; '.join(looked)}. Store it with "
            f"ember.save_model({name!r}, path) or `ember models save {name} PATH`"
        )


# -- the store directory -------------------------------------------------------------------------


def get_dir() -> Path:
    """The store directory: :func:`set_dir`'s, else ``$EMBER_HOME``, else
    ``$XDG_CACHE_HOME/ember`` when that variable is set, else ``~/.cache/ember``.

    The environment is read on every call. The directory need not exist yet.
    """
    return _dir_and_origin()[0]


def get_dir_origin() -> str:
    """Which rule chose :func:`get_dir`: ``"set_dir"``, ``"EMBER_HOME"``, ``"XDG_CACHE_HOME"`` or
    ``"default"``."""
    return _dir_and_origin()[1]


def set_dir(path: str | os.PathLike[str] | None) -> None:
    """Use ``path`` as the store directory in this process (``None`` restores the default rules).

    A relative path is made absolute now, so a later ``chdir`` does not move the store.
    """
    set_store_dir(path)


def _dir_and_origin() -> tuple[Path, str]:
    directory, origin = store_dir()
    return Path(directory), origin


def compiled_cache_dir() -> Path:
    """``<get_dir()>/compiled``: the command line's model cache when none is given.

    ``Core`` itself never caches unless ``CACHE_DIR`` or ``EMBER_CACHE_DIR`` is set.
    """
    return get_dir() / COMPILED_DIR


# -- names ---------------------------------------------------------------------------------------


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name.

    A name is 1 to 128 characters among letters, digits and ``. _ + -``, starting with a letter or
    a digit; it does not end in ``.onnx`` (that would be read as a file path) and is not
    ``compiled``. So it is never absolute, never contains a path separator or ``..`` as a path
    part, and always names one directory directly inside the store.

    :raises ModelNameError: (an ``InvalidModelError``, so a ``ValueError``) saying what is wrong.
    """
    if not isinstance(name, str):
        raise ModelNameError(repr(name), f"a model name is a string, not {type(name).__name__}")
    if not name:
        raise ModelNameError(name, "it is empty")
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise ModelNameError(name, "it is an absolute path; give a name such as 'ppocr-cls'")
    if any(sep in name for sep in ("/", "\\", os.sep)):
        raise ModelNameError(name, "it contains a path separator")
    if name in (".", ".."):
        raise ModelNameError(name, "it is a relative directory")
    if name.lower().endswith(".onnx"):
        raise ModelNameError(name, "names do not end in .onnx (that is read as a file path)")
    if name in RESERVED_NAMES:
        raise ModelNameError(name, "it is reserved for the store's own directory")
    if not _NAME.fullmatch(name):
        raise ModelNameError(
            name, "use 1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter "
                  "or a digit")
    return name


# -- locations (set_model_cache) -----------------------------------------------------------------


def set_model_cache(name: str, path: str | os.PathLike[str]) -> None:
    """Remember that model ``name`` lives at ``path`` (an ``.onnx`` file, or a directory holding
    ``model.onnx``), for this and every later process using the same store directory.

    The location is looked at before the store directory. It need not exist yet; it is kept as an
    absolute path in ``<get_dir()>/.locations.json``.
    """
    validate_model_name(name)
    location = str(Path(path).expanduser().absolute())
    _update_locations(lambda locations: locations.__setitem__(name, location), create=True)


def clear_model_cache(name: str) -> None:
    """Forget the location set for ``name``; no file is deleted. Nothing happens when none is
    set."""
    validate_model_name(name)
    _update_locations(lambda locations: locations.pop(name, None), create=False)


def list_cached_models() -> list[str]:
    """The names that have a location set with :func:`set_model_cache`, sorted."""
    return sorted(model_locations())


def model_locations() -> dict[str, Path]:
    """Every location set with :func:`set_model_cache`, by name."""
    return {name: Path(location) for name, location in _read_locations(get_dir()).items()}


def list_stored_models() -> list[str]:
    """The names of the models saved in the store directory (``<dir>/<name>/model.onnx``)."""
    try:
        children = list(get_dir().iterdir())
    except OSError:
        return []
    return sorted(child.name for child in children
                  if _NAME.fullmatch(child.name) and child.name not in RESERVED_NAMES
                  and (child / MODEL_FILE).is_file())


def _read_locations(directory: Path) -> dict[str, str]:
    """The locations file's entries; untrusted (anyone may edit it): read bounded by
    ember.common.safe_json, and only entries with a valid name and a string location are kept.

    :raises EmberError: (a StoreFileError) naming the file, for one that is not such JSON.
    """
    from ember.store import confined

    path = directory / LOCATIONS_FILE
    try:
        with open(confined.open_file(str(directory), (), LOCATIONS_FILE, os.O_RDONLY),
                  "rb") as locations_file:
            data = locations_file.read(_LOCATIONS_MAX + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StoreFileError(f"cannot read the model locations in {path}: "
                             f"{exc.strerror or exc}") from exc
    try:
        document = safe_json.loads(data, what=str(path), max_size=_LOCATIONS_MAX, max_depth=3)
    except BlobFormatError as exc:
        raise StoreFileError(f"{exc}; fix or delete it") from None
    locations = document.get("locations") if isinstance(document, dict) else None
    if not isinstance(locations, dict):
        raise StoreFileError(f"{path} has no 'locations' object; fix or delete it")
    return {name: location for name, location in locations.items()
            if isinstance(location, str) and _NAME.fullmatch(name)
            and "\0" not in location}


def _update_locations(change: Callable[[dict[str, str]], object], *, create: bool) -> None:
    """Read, change and atomically rewrite ``.locations.json`` under a cross-process lock."""
    from ember.store import confined

    directory = get_dir()
    if not create and not (directory / LOCATIONS_FILE).exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    with confined.file_lock(str(directory), (), _LOCATIONS_LOCK, timeout=_LOCK_TIMEOUT) as held:
        if not held:
            raise StoreFileError(f"{directory / _LOCATIONS_LOCK} stayed locked for "
                                 f"{_LOCK_TIMEOUT:.0f} s by another process")
        locations = _read_locations(directory)
        change(locations)
        document = {"version": _LOCATIONS_VERSION, "locations": dict(sorted(locations.items()))}
        write_inside(directory, (), LOCATIONS_FILE,
                     (json.dumps(document, indent=2) + "\n").encode())


# -- looking models up ---------------------------------------------------------------------------


def stored_model_path(name: str) -> Path:
    """Where ``name`` is (or would be) saved in the store: ``<get_dir()>/<name>/model.onnx``."""
    return get_dir() / validate_model_name(name) / MODEL_FILE


def _location_file(location: Path) -> Path:
    return location / MODEL_FILE if location.is_dir() else location


def cached_model_path(name: str) -> Path | None:
    """The ONNX file of model ``name``: its location set with :func:`set_model_cache` when that
    file exists, else ``<get_dir()>/<name>/model.onnx`` when it exists, else None.

    :raises ModelNameError: for an invalid name.
    """
    stored = stored_model_path(name)
    location = model_locations().get(name)
    if location is not None and _location_file(location).is_file():
        return _location_file(location)
    return stored if stored.is_file() else None


def find_model(name: str) -> Path:
    """The ONNX file of model ``name``, as :func:`cached_model_path` finds it.

    :raises StoredModelNotFoundError: (a ``ModelNotFoundError``) naming every place looked at.
    :raises ModelNameError: for an invalid name.
    """
    return _find(name, looked=[])


def resolve_model_name(source: Any) -> Any:
    """Turn a stored model's name into the path of its file; return anything else unchanged.

    ``Core.read_model`` and ``Core.compile_model`` call this on what they are given. A string that
    is an existing path, contains a path separator or ends in ``.onnx`` is a path and is returned
    as it is, as are bytes, ``Model`` objects and ``os.PathLike`` objects.

    :raises StoredModelNotFoundError: (a ``ModelNotFoundError``) naming every place looked at.
    :raises ModelNameError: for a string that is neither a path nor a valid name.
    """
    if not is_model_name(source):
        return source
    return str(find_stored_model(source))


def find_stored_model(name: str) -> Path:
    """The file of the stored model ``name`` (see :func:`resolve_model_name`).

    :raises StoredModelNotFoundError: naming every place looked at.
    """
    return _find(name, looked=[f"a file {name!r} in {Path.cwd()} (none)"])


def _find(name: str, looked: list[str]) -> Path:
    found = cached_model_path(name)
    if found is not None:
        return found
    location = model_locations().get(name)
    if location is None:
        looked.append("a location set with ember.set_model_cache (none set)")
    else:
        looked.append(f"its location set with ember.set_model_cache, "
                      f"{_location_file(location)} (missing)")
    directory, origin = _dir_and_origin()
    why = {"set_dir": "set with ember.set_dir", "default": "the default"}.get(origin,
                                                                             f"from ${origin}")
    looked.append(f"{directory / name / MODEL_FILE} in the store (store directory {why})")
    raise StoredModelNotFoundError(name, looked)


# -- saving --------------------------------------------------------------------------------------


def save_model(name: str, model: Model | onnx.ModelProto | bytes | str | os.PathLike[str]
               ) -> Path:
    """Put a model into the store as ``<get_dir()>/<name>/model.onnx``, atomically (a reader sees
    the old file or the whole new one), and return that path.

    ``model`` is a ``Model``, an ``onnx.ModelProto``, ONNX bytes, a file path, or the name of
    another stored model. A file is copied byte for byte, unless it keeps weights in external
    files: those are then embedded (up to protobuf's 2 GB limit). A location set for ``name`` with
    :func:`set_model_cache` still comes first when the name is looked up.

    :raises ModelNameError: for an invalid name.
    :raises ember.errors.InvalidModelError: when ``model`` is not a valid ONNX model.
    :raises ember.errors.ModelNotFoundError: when the file or stored model does not exist.
    """
    target = stored_model_path(name)
    data = _model_bytes(model)
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    # <name>/ may be a link planted by whoever else can write the store: not followed
    write_inside(target.parent.parent, (target.parent.name,), MODEL_FILE, data)
    return target


def _model_bytes(model: Any) -> bytes:
    import onnx

    if isinstance(model, Model):
        return _serialize(model.proto, model.friendly_name)
    if isinstance(model, onnx.ModelProto):
        data = _serialize(model, "the given ModelProto")
    elif isinstance(model, bytes | bytearray | memoryview):
        data = bytes(model)
    else:
        path = Path(resolve_model_name(model))
        loaded = read_model(path)  # checks the file, with errors that say why
        raw = path.read_bytes()
        if not _uses_external_data(onnx.load_model_from_string(raw).graph):
            return raw
        return _serialize(loaded.proto, str(path))
    read_model(data)  # checks the bytes
    return data


def _serialize(proto: onnx.ModelProto, source: str) -> bytes:
    try:
        return proto.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise InvalidModelError(source, f"{exc}; point to the file with ember.set_model_cache "
                                        "instead of storing a copy") from exc


def _uses_external_data(graph: onnx.GraphProto) -> bool:
    import onnx

    tensors = list(graph.initializer)
    for sparse in graph.sparse_initializer:
        tensors += [sparse.values, sparse.indices]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
            tensors += attribute.tensors
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            if any(_uses_external_data(g) for g in [*subgraphs, *attribute.graphs]):
                return True
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
