"""The AUTO device: compile for the best available device, serving on CPU until it is ready.

``core.compile_model(model, "AUTO")`` picks the first available of GPU, CPU and TEMPLATE;
``"AUTO:GPU,CPU"`` (or ``MULTI_DEVICE_PRIORITIES``) gives the order. Everything goes through the
Core's public methods with concrete device names, so the model cache works as for any compile:

- when the target is CPU, or CPU is not a candidate, or ``ENABLE_STARTUP_FALLBACK`` is False,
  AUTO compiles for the target at once (the next candidate if that fails);
- when ``CACHE_DIR`` holds the target's compile of this model (AUTO leaves a small *ready*
  entry there after a background compile succeeds), it compiles for the target at once: a warm
  start;
- otherwise it compiles for CPU (from CPU's own cache entry when there is one) and returns, and
  compiles for the target on a background thread. When that is done (and, for a model with
  dynamic shapes, the target has run the last input CPU saw, so that its kernels for that shape
  are built) the next inference runs on the target. Each inference runs whole on the device
  current when it started: none is lost, repeated or reordered by the switch.

``EXECUTION_DEVICES`` names the device serving inferences now. The background compile runs on an
ordinary (not daemon) thread: a process that ends meanwhile waits for it, rather than tearing a
driver down under it. ``MULTI`` and ``HETERO`` are not
offered: asking for them raises ``NotSupportedError`` naming AUTO.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ember import properties as props
from ember.compiled_model import CompiledModel
from ember.device import AUTO, DeviceDescription, is_virtual, split_device_name
from ember.errors import EmberError, NotSupportedError, UnknownDeviceError, UnknownPropertyError
from ember.log import get_logger

if TYPE_CHECKING:
    from ember.core_api import CoreAPI as Core
    from ember.core_api import ModelSource

log = get_logger("ember.auto")

#: Candidates when none are named: accelerators first, then CPU, then the reference device.
DEFAULT_ORDER = ("GPU", "CPU", "TEMPLATE")
#: Keys AUTO itself takes; every other key goes to the candidates that accept it.
AUTO_KEYS = (props.DEVICE_PRIORITIES, props.ENABLE_STARTUP_FALLBACK)
_FALLBACK = "CPU"

_DESCRIPTION = DeviceDescription(
    name=AUTO, full_name="Ember AUTO device", architecture="", capabilities=(),
    config_defaults={}, caching_properties=(), metrics={})


def compile_auto(core: Core, model: ModelSource, device_name: str,
                 config: Mapping[str, Any] | None) -> AutoCompiledModel:
    """``Core.compile_model`` for ``"AUTO"`` and ``"AUTO:..."`` (see the module's docstring)."""
    kind, _, listed = device_name.partition(":")
    if kind != AUTO:
        raise NotSupportedError(
            f"{kind} is not available in Ember; use AUTO instead ('AUTO:GPU,CPU' runs on the "
            "first of the devices listed that compiles, serving on CPU meanwhile)")
    config = {str(k): v for k, v in (config or {}).items()}
    listed = str(config.pop(props.DEVICE_PRIORITIES, "") or listed)
    fallback_allowed = _flag(config.pop(props.ENABLE_STARTUP_FALLBACK, True))
    candidates = _candidates(core, listed)
    configs = {name: _config_for(core, name, config) for name in candidates}
    _check_every_key_used(config, configs)
    from ember.store import resolve_model_name

    model = resolve_model_name(model)
    target = candidates[0]
    fallback = next((c for c in candidates[1:] if split_device_name(c)[0] == _FALLBACK), None)
    ready = _ReadyMark(core, model, target, configs[target])
    if fallback is None or not fallback_allowed or ready.is_marked():
        return _compile_first(core, model, candidates, configs, config)
    try:
        first = core.compile_model(model, fallback, configs[fallback])
    except EmberError as exc:  # CPU cannot serve it: the target, compiled now, must
        log.warning("AUTO: %s cannot serve while %s compiles (%s)", fallback, target, exc)
        return _compile_first(core, model, candidates, configs, config)
    auto = AutoCompiledModel(first, candidates, config)
    auto._start_target(core, model, target, configs[target], ready)
    return auto


def _flag(value: Any) -> bool:
    return str(value).upper() not in ("FALSE", "NO", "0", "OFF")


def _candidates(core: Core, listed: str) -> list[str]:
    available = core.available_devices
    if listed:  # as OpenVINO's AUTO: listed devices that are absent here are skipped
        found, absent = [], []
        for name in (n.strip() for n in listed.split(",") if n.strip()):
            if is_virtual(name):
                raise NotSupportedError(f"AUTO cannot contain {name}")
            try:
                core.get_property(name, props.FULL_DEVICE_NAME)
            except UnknownDeviceError as exc:
                absent.append(exc)
                continue
            found.append(_full_name(core, name))
        if not found:
            raise absent[0]
        return found
    ordered: list[str] = []
    for kind in DEFAULT_ORDER:
        ordered += [d for d in available if split_device_name(d)[0] == kind][:1]
    ordered += [d for d in available if d not in ordered and split_device_name(d)[0]
                not in DEFAULT_ORDER]
    if not ordered:
        raise UnknownDeviceError(AUTO, available, "no device to choose from")
    return ordered


def _full_name(core: Core, name: str) -> str:
    if name in core.available_devices:
        return name
    kind, index = split_device_name(name)
    same = [d for d in core.available_devices if split_device_name(d)[0] == kind]
    return same[index or 0] if same else name


def _config_for(core: Core, device: str, config: Mapping[str, Any]) -> dict[str, Any]:
    writable = set(core.get_property(device, props.SUPPORTED_CONFIG_KEYS))
    return {k: v for k, v in config.items()
            if k in writable or k == props.CACHE_ENCRYPTION_CALLBACKS}


def _check_every_key_used(config: Mapping[str, Any], configs: Mapping[str, dict]) -> None:
    used = {k for c in configs.values() for k in c}
    unknown = [k for k in config if k not in used]
    if unknown:
        known = sorted({*used, *AUTO_KEYS})
        raise UnknownPropertyError(unknown[0], "AUTO (no candidate device takes it)", known)


def _compile_first(core: Core, model: ModelSource, candidates: list[str],
                   configs: Mapping[str, dict], config: Mapping[str, Any]) -> AutoCompiledModel:
    """The first candidate that compiles, as OpenVINO's AUTO falls back on a failed compile."""
    failures = []
    for name in candidates:
        try:
            return AutoCompiledModel(core.compile_model(model, name, configs[name]),
                                     candidates, config)
        except EmberError as exc:
            failures.append(f"{name}: {exc}")
            log.warning("AUTO: compiling for %s failed (%s); trying the next device", name, exc)
    raise NotSupportedError("AUTO: no candidate device compiled the model: " + "; ".join(failures))


class _ReadyMark:
    """AUTO's entry in CACHE_DIR saying that the target compiled this model with these settings,
    so that its caches are warm: a small kernel-cache entry (the core's format and locks)."""

    def __init__(self, core: Core, model: ModelSource, target: str,
                 config: Mapping[str, Any]) -> None:
        cache_dir = config.get(props.CACHE_DIR) or core.get_property(target, props.CACHE_DIR)
        self.store = self.key = None
        if not cache_dir:
            return
        from ember._version import __version__
        from ember.cache import KernelCache, ModelCache
        from ember.cache.key import model_identity

        cache = ModelCache(os.fspath(cache_dir))
        try:
            digest, self.model_name = model_identity(model, cache.file_digests)
        except EmberError:
            return  # an unreadable model: the compile says why
        caching = core.get_property(target, props.CACHING_PROPERTIES)
        values = {name: config.get(name, core.get_property(target, name)) for name in caching}
        self.store = KernelCache(cache, plugin="ember-auto", plugin_version=__version__,
                                 device=target)
        self.key = self.store.key({"model": digest, "device": target,
                                   "properties": {k: str(v) for k, v in values.items()}})

    def is_marked(self) -> bool:
        return self.store is not None and self.key is not None and self.store.has(self.key)

    def mark(self) -> None:
        if self.store is not None and self.key is not None:
            self.store.put(self.key, b"ready", name=self.model_name)
            self.store.report()


class _Switch:
    """The device model of an AUTO compile: runs each inference on the compiled model current
    when it starts (follows :class:`ember.device.DeviceModel`)."""

    def __init__(self, first: CompiledModel) -> None:
        self.current = first
        self.inputs = first.inputs
        self.outputs = first.outputs
        self.switched = threading.Event()
        self.last_inputs: list[np.ndarray] | None = None  # for the target's warm-up

    def infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        current = self.current  # one read: the whole inference runs on this device
        if not self.switched.is_set():
            self.last_inputs = [np.array(a, copy=True) for a in inputs]
        return list(current.device_model.infer(inputs))

    def switch(self, target: CompiledModel) -> None:
        self.current = target
        self.last_inputs = None
        self.switched.set()


class AutoCompiledModel(CompiledModel):
    """A model compiled by AUTO: a CompiledModel whose device may change once, CPU to target."""

    def __init__(self, first: CompiledModel, candidates: list[str],
                 config: Mapping[str, Any]) -> None:
        self._switch = _Switch(first)
        self.candidates = list(candidates)
        self.target_error: BaseException | None = None
        self._target_thread: threading.Thread | None = None
        super().__init__(self._switch, _DESCRIPTION, config, _export_current,
                         loaded_from_cache=False)
        self._switch.switched.set()  # until a background compile starts

    @property
    def current(self) -> CompiledModel:
        """The compiled model serving inferences now."""
        return self._switch.current

    def wait_for_target(self, timeout: float | None = None) -> bool:
        """Wait (seconds) for the background compile; True once the target serves (Ember's
        addition: OpenVINO has no way to wait for it)."""
        thread = self._target_thread
        if thread is not None:
            thread.join(timeout)
        return self._switch.switched.is_set() and self.target_error is None

    def _start_target(self, core: Core, model: ModelSource, target: str,
                      config: Mapping[str, Any], ready: _ReadyMark) -> None:
        self._switch.switched.clear()
        self._target_thread = threading.Thread(
            target=self._compile_target, args=(core, model, target, dict(config), ready),
            name=f"ember-auto-{target}")
        self._target_thread.start()

    def _compile_target(self, core: Core, model: ModelSource, target: str,
                        config: dict[str, Any], ready: _ReadyMark) -> None:
        try:
            compiled = core.compile_model(model, target, config)
            warm_up = self._switch.last_inputs
            if warm_up is not None:  # a dynamic model builds per shape: not while serving
                compiled._infer_arrays(warm_up)
        except Exception as exc:  # the CPU keeps serving; the failure is kept and logged
            self.target_error = exc
            log.warning("AUTO: compiling for %s failed (%s); inferences stay on %s",
                        target, exc, self.current.device.name)
            self._switch.switched.set()
            return
        self._switch.switch(compiled)
        log.info("AUTO: %s is ready; inferences now run there", target)
        ready.mark()

    def _properties(self) -> dict[str, Any]:
        current = self.current
        values = current._properties()
        values.update({k: v for k, v in self.config.items() if k not in values})
        values[props.EXECUTION_DEVICES] = [current.device.name]
        values[props.DEVICE_PRIORITIES] = ",".join(self.candidates)
        values[props.SUPPORTED_PROPERTIES] = sorted({*values, props.SUPPORTED_PROPERTIES})
        return values

    def __repr__(self) -> str:
        return (f"<CompiledModel on AUTO ({self.current.device.name} now; "
                f"candidates {','.join(self.candidates)})>")


def _export_current(compiled: CompiledModel) -> bytes:
    assert isinstance(compiled, AutoCompiledModel)
    return compiled.current.export_model()
