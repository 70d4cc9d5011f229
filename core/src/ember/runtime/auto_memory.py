"""What AUTO remembers: the candidate it measured fastest for a model, so that later compiles go
straight to it without measuring again.

The choice is keyed by the model's content digest, the candidates in order (each with its
plugin's distribution and version and the device's full name: another driver, another machine
sharing a cache, another version of a plugin is another key) and AUTO's compile settings (a
``THROUGHPUT`` compile may have another winner than a ``LATENCY`` one).

- With ``CACHE_DIR``, the choice is a small entry of the model cache, written through its
  public :class:`ember.cache.KernelCache` (plugin ``ember-auto``): checksummed, signed with
  ``CACHE_SIGNING_KEY`` when one is set, published atomically, evicted like any entry. Its
  payload is untrusted JSON, read by :mod:`ember.common.safe_json` (at most ``MAX_RECORD`` bytes)
  and checked field by field: the device must be one of the candidates, every time a finite number
  for a candidate. A record that fails is refused with a warning, and AUTO measures again.
- Without it, the choice is kept for the life of the process (a file model is known by its path
  and its size, modification time and inode; bytes and Models by their digest).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ember import properties as props
from ember.common import safe_json
from ember.common.log import get_logger
from ember.errors import BlobFormatError, EmberError

if TYPE_CHECKING:
    from ember.cache.kernel_cache import KernelCache
    from ember.cache.key import CacheKey
    from ember.runtime.core_api import CoreAPI as Core
    from ember.runtime.core_api import ModelSource

log = get_logger("ember.auto")

#: Bytes a choice record may hold: a device name and one short line per candidate.
MAX_RECORD = 8192
_MAX_NOTE = 300
_RECORD = "AUTO's remembered choice"
#: Settings that say where and how the cache is kept, not how the model runs.
_NOT_KEYED = frozenset({*props.CORE_CONFIG_KEYS, props.CACHE_ENCRYPTION_CALLBACKS})

# AUTO's choices without a CACHE_DIR, kept for this process: module-level because every Core of
# the process compiling the same model on the same devices should reuse one measurement. Bounded
# (oldest dropped first): a program that compiles many models with AUTO must not grow it for ever.
_process_choices: dict[str, Choice] = {}
_process_lock = threading.Lock()
_MAX_PROCESS_CHOICES = 256


class Choice(NamedTuple):
    """The device chosen, and what measuring found (seconds per call; why others have none)."""

    device: str
    seconds: dict[str, float]
    left_out: dict[str, str]

    def to_json(self) -> bytes:
        return json.dumps({"device": self.device, "seconds": self.seconds,
                           "left_out": self.left_out}, sort_keys=True).encode()


class ChoiceMemory:
    """Where one AUTO compile's choice is looked up and kept (see the module's docstring)."""

    def __init__(self, core: Core, model: ModelSource, candidates: list[str],
                 config: Mapping[str, Any]) -> None:
        self.candidates = list(candidates)
        self.where = "this process"
        self._store: KernelCache | None = None
        self._key: CacheKey | None = None
        self._process_key: str | None = None
        self._model_name = "model"
        parts = {"kind": "auto-choice",
                 "candidates": [[name, str(core.get_versions(name)[name]),
                                 str(core.get_property(name, props.FULL_DEVICE_NAME))]
                                for name in candidates],
                 "config": {k: str(v) for k, v in sorted(config.items()) if k not in _NOT_KEYED}}
        cache_dir = config.get(props.CACHE_DIR) or core.get_property(candidates[0],
                                                                     props.CACHE_DIR)
        try:
            if cache_dir:
                self._open_cache(core, model, os.fspath(cache_dir), parts, config)
            else:
                self._process_key = _process_key(model, parts)
        except (EmberError, OSError) as exc:  # an unreadable model: the compile says why
            log.debug("AUTO: no memory of choices for this model (%s)", exc)

    def _open_cache(self, core: Core, model: ModelSource, cache_dir: str,
                    parts: dict[str, Any], config: Mapping[str, Any]) -> None:
        from ember._version import __version__
        from ember.cache import KernelCache
        from ember.cache.key import model_identity

        first = core._device(self.candidates[0])
        cache = core._model_cache(cache_dir)
        signer = core._signer(first, config)
        digest, self._model_name = model_identity(model, cache.file_digests, signer)
        self._store = KernelCache(cache, plugin="ember-auto", plugin_version=__version__,
                                  device="AUTO", signer=signer)
        self._key = self._store.key({**parts, "model": digest})
        self.where = "CACHE_DIR"

    def recall(self) -> Choice | None:
        """The choice kept for this compile, or None (none kept, or a record refused)."""
        if self._process_key is not None:
            with _process_lock:
                return _process_choices.get(self._process_key)
        if self._store is None or self._key is None:
            return None
        payload = self._store.get(self._key)
        self._store.report()
        if payload is None:
            return None
        try:
            return parse_choice(payload, self.candidates)
        except BlobFormatError as exc:
            log.warning("AUTO: refused the choice recorded in the cache for %s (%s); "
                        "measuring again", self._model_name, exc)
            return None

    def remember(self, choice: Choice) -> None:
        if self._process_key is not None:
            with _process_lock:
                if len(_process_choices) >= _MAX_PROCESS_CHOICES:
                    _process_choices.pop(next(iter(_process_choices)))
                _process_choices[self._process_key] = choice
        elif self._store is not None and self._key is not None:
            self._store.put(self._key, choice.to_json(), name=self._model_name)
            self._store.report()


def parse_choice(payload: bytes | memoryview, candidates: list[str]) -> Choice:
    """A record's bytes as a Choice among ``candidates``; BlobFormatError for anything else."""
    document = safe_json.obj(safe_json.loads(payload, what=_RECORD, max_size=MAX_RECORD,
                                             max_depth=4), _RECORD)
    device = safe_json.get(document, "device", str, _RECORD,
                           check=lambda name: name in candidates)
    times = safe_json.obj(safe_json.get(document, "seconds", dict, _RECORD), _RECORD)
    notes = safe_json.obj(safe_json.get(document, "left_out", dict, _RECORD, default={}),
                          _RECORD)
    seconds: dict[str, float] = {}
    for name, value in times.items():
        if name not in candidates or type(value) not in (int, float) or not 0 < value < 3600:
            raise BlobFormatError(f"{_RECORD} has an invalid time {safe_json.short(value)} "
                                  f"for {safe_json.short(name)}")
        seconds[name] = float(value)
    if device not in seconds:
        raise BlobFormatError(f"{_RECORD} names {device}, which it has no time for")
    left_out: dict[str, str] = {}
    for name, note in notes.items():
        if name not in candidates or type(note) is not str:
            raise BlobFormatError(f"{_RECORD} has an invalid note for {safe_json.short(name)}")
        left_out[name] = note[:_MAX_NOTE]
    return Choice(device, seconds, left_out)


def _process_key(model: ModelSource, parts: dict[str, Any]) -> str:
    from ember.cache.key import entry_key
    from ember.common import checksum

    if isinstance(model, bytes | bytearray | memoryview):
        identity = checksum.hexdigest(model)
    elif isinstance(model, str | os.PathLike):
        path = os.path.realpath(os.fspath(model))
        status = os.stat(path)
        identity = f"{path}:{status.st_size}:{status.st_mtime_ns}:{status.st_ino}"
    else:  # a Model, which the application may have changed since it was read
        identity = checksum.hexdigest(model.to_bytes())
    return entry_key({**parts, "model": identity}).digest
