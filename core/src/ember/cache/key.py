"""The model cache's key: everything that can change a compiled result, and nothing else.

A key is the checksum (ember.common.checksum) of a small JSON document, its *parts*. The parts
travel in each blob's header, so that a miss next to an entry for the same model can say which part
differed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember._version import __version__
from ember.cache.file_digest import FileDigests
from ember.common import checksum
from ember.common.record import Record
from ember.store import blob

if TYPE_CHECKING:
    from ember.model.model import Model
    from ember.store.signing import Signer

#: Bumped when the meaning of a key part changes, so that old entries stop matching.
KEY_SCHEMA = 1


class CacheKey(Record):
    """What identifies one cache entry: the key's ``parts`` (model digest, device, plugin and
    versions, properties that change the result...) and the ``digest`` of them that names the
    entry's file. Built by the core (``make_key``) or by :meth:`KernelCache.key`."""

    _fields = ("parts", "digest")
    __slots__ = _fields

    def __init__(self, parts: dict[str, Any], digest: str) -> None:
        self.parts = parts
        self.digest = digest

    @property
    def model_digest(self) -> str | None:
        """The content digest of the model in this key, or None for a key that names no model (a
        kernel entry's)."""
        return self.parts.get("model")


def make_key(*, model_digest: str, device_kind: str, architecture: str, plugin: str,
             plugin_version: str, properties: Mapping[str, Any],
             flags: tuple[str, ...] = ()) -> CacheKey:
    """Build the key of one compile.

    :param model_digest: checksum of the model's content (topology and weights).
    :param device_kind: the device name without its index (GPU.0 and GPU.1 of one architecture
        share entries; their DEVICE_ARCHITECTURE, a caching property, tells them apart otherwise).
    :param architecture: the device's DEVICE_ARCHITECTURE, always part of the key (a plugin may
        forget to list it among its caching properties; a blob for another ISA is never right).
    :param properties: the values of the plugin's CACHING_PROPERTIES for this compile.
    :param flags: what changes the payload's form (``"encrypted"``).
    """
    return entry_key({
        "model": model_digest,
        "device": device_kind,
        "architecture": architecture,
        "plugin": plugin,
        "plugin_version": plugin_version,
        "properties": {name: _jsonable(value) for name, value in sorted(properties.items())},
        "flags": sorted(flags),
    })


def entry_key(parts: Mapping[str, Any]) -> CacheKey:
    """The key of any cache entry: ``parts`` plus the versions every entry depends on."""
    parts = {**parts, "schema": KEY_SCHEMA, "ember_version": __version__,
             "container_version": blob.CONTAINER_VERSION}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=repr)
    return CacheKey(parts, checksum.hexdigest(text.encode()))


def model_identity(model: Model | str | os.PathLike[str] | bytes,
                   digests: FileDigests, signer: Signer | None = None) -> tuple[str, str]:
    """The content digest of a model and a name to show for it, without parsing a file.

    A path is hashed through ``digests`` (remembered against the file's identity), bytes are
    hashed. A Model without edits is its source (so that ``read_model`` then ``compile_model``
    hits the entry ``compile_model(path)`` made, at the same cost); an edited one is the digest
    of its source's and of its recipe (``ember.model.model_edits.recipe``); a Model whose parsed
    graph the application changed in place is hashed as serialized.
    """
    if isinstance(model, bytes | bytearray | memoryview):
        return checksum.hexdigest(model), "model"
    if not isinstance(model, str | os.PathLike):  # a Model (imported only if one was made)
        changed = model.changed_in_place()
        if changed is not None:
            return changed, model.friendly_name
        source_digest, name = model_identity(model.source, digests, signer)
        if not model.edits:
            return source_digest, name
        from ember.model.model_edits import recipe

        text = json.dumps([source_digest, recipe(model.edits)], sort_keys=True,
                          separators=(",", ":"))
        return checksum.hexdigest(text.encode()), name
    from ember.store.paths import MODEL_FILE

    path = os.fspath(model)  # os.path, not pathlib: a warm start does not import pathlib
    folder, name = os.path.split(path)
    # a stored model is <store>/<name>/model.onnx: its name is the folder's
    if name == MODEL_FILE and os.path.basename(folder):
        name = os.path.basename(folder)
    try:
        return digests.digest(path, signer), name
    except OSError:
        from ember.model.model import read_model

        read_model(path)  # raises the error a user can act on (missing file, a directory...)
        raise


def explain_difference(wanted: Mapping[str, Any], found: Mapping[str, Any]) -> str:
    """Say which parts differ between the key looked up and one found for the same model.

    ``found`` comes from an entry's header: any JSON object (a non-object ``properties`` is
    read as none)."""
    reasons = []
    for name in sorted(set(wanted) | set(found)):
        if name == "properties":
            continue
        if wanted.get(name) != found.get(name):
            reasons.append(f"{name} {found.get(name)!r} cached, {wanted.get(name)!r} now")
    wanted_props = _mapping(wanted.get("properties"))
    found_props = _mapping(found.get("properties"))
    for name in sorted(set(wanted_props) | set(found_props)):
        if wanted_props.get(name) != found_props.get(name):
            reasons.append(
                f"property {name} {found_props.get(name)!r} cached, {wanted_props.get(name)!r} now"
            )
    return "; ".join(reasons) or "no visible difference"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
