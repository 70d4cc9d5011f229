"""The AUTO device: run on the fastest candidate, measured on the model's first compile.

``core.compile_model(model, "AUTO")`` chooses among the available GPU, CPU and TEMPLATE (and any
other device installed); ``"AUTO:GPU,CPU"`` (or ``MULTI_DEVICE_PRIORITIES``) names the
candidates and their order. ``EMBER_AUTO_SELECTION`` says how it chooses:

- ``"MEASURE"`` (the default). On the first compile of a model, AUTO compiles it for every
  candidate that accepts it and times one inference on each (:mod:`ember.runtime.auto_measure`:
  bounded time, on the application's own inputs when it has run one, else on inputs made from the
  ports), keeps the fastest and remembers it (:mod:`ember.runtime.auto_memory`: in ``CACHE_DIR``
  when it is set, else for the life of the process). While it measures, CPU serves when it is a
  candidate and ``ENABLE_STARTUP_FALLBACK`` is not False: the other candidates compile and are
  timed on a background thread, and the next inference after the choice runs on the winner.
  Otherwise the measuring happens inside ``compile_model``. A later compile of the same model
  with the same candidates, plugin versions and settings compiles for the remembered winner at
  once (the next candidate if that fails), without measuring.
- ``"PRIORITY"``: OpenVINO's rule, the first candidate in order that compiles. CPU serves while
  the first candidate compiles in the background; when ``CACHE_DIR`` holds that device's
  compile of this model (AUTO leaves a small *ready* entry there after a background compile
  succeeds), it compiles for it at once, a warm start.

Each inference runs whole on the device current when it started: none is lost, repeated or
reordered by a switch. ``EXECUTION_DEVICES`` names the device serving inferences now, and
``EMBER_AUTO_CHOICE`` says why, in words (``"measured: CPU was the fastest (CPU 1.2 ms, GPU.0
18 ms)"``, ``"remembered in CACHE_DIR: ..."``). A process that ends while AUTO works in the
background stops that work (:mod:`ember.runtime.auto_exit`): it waits only for the compile or first
inference running at that moment, prints nothing, and remembers nothing, so a later start
measures again.
``MULTI`` and ``HETERO`` are not offered: asking for them raises ``NotSupportedError`` naming
AUTO.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ember import properties as props
from ember.common.log import get_logger
from ember.contract.device import (
    AUTO,
    DeviceDescription,
    is_virtual,
    one_name_per_device,
    split_device_name,
)
from ember.errors import EmberError, NotSupportedError, UnknownDeviceError, UnknownPropertyError
from ember.runtime import auto_exit
from ember.runtime.auto_measure import (
    DYNAMIC_SIZES,
    AppPause,
    Measurement,
    generated_inputs,
    measure,
    sizes_guessed,
)
from ember.runtime.auto_memory import Choice, ChoiceMemory
from ember.runtime.compiled_model import CompiledModel

if TYPE_CHECKING:
    from ember.model.port import Port
    from ember.runtime.core_api import CoreAPI as Core
    from ember.runtime.core_api import ModelSource

log = get_logger("ember.auto")

#: Candidates when none are named: accelerators first, then CPU, then the reference device.
DEFAULT_ORDER = ("GPU", "CPU", "TEMPLATE")
#: Keys AUTO itself takes; every other key goes to the candidates that accept it.
AUTO_KEYS = (props.DEVICE_PRIORITIES, props.ENABLE_STARTUP_FALLBACK, props.AUTO_SELECTION)
MEASURE, PRIORITY = props.AUTO_SELECTION_MODES
_FALLBACK = "CPU"
#: Seconds the measuring waits, once the candidates are compiled, for the application's first
#: inference when the model's input sizes are dynamic: timing its real inputs ranks the devices
#: as it will use them (a small made-up image can favour another device than its large one).
APP_INPUT_WAIT = 2.0
#: Seconds a timed turn waits for the application's running inference to end before it starts
#: anyway (and is timed again): an inference of a slow model does not hold the measuring up.
APP_CALL_WAIT = 0.5
#: Seconds the application has the cores to itself between two turns, when a turn held its
#: inferences back.
APP_WINDOW = 0.05

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
            "fastest of the devices listed, measured, serving on CPU meanwhile)")
    config = {str(k): v for k, v in (config or {}).items()}
    listed = str(config.pop(props.DEVICE_PRIORITIES, "") or listed)
    fallback_allowed = _flag(config.pop(props.ENABLE_STARTUP_FALLBACK, True))
    selection = str(config.pop(props.AUTO_SELECTION, MEASURE)).upper()
    if selection not in props.AUTO_SELECTION_MODES:
        from ember.errors import PropertyValueError

        raise PropertyValueError(f"{props.AUTO_SELECTION} must be one of "
                                 f"{', '.join(props.AUTO_SELECTION_MODES)}, not {selection!r}")
    candidates = _candidates(core, listed)
    configs = {name: _config_for(core, name, config) for name in candidates}
    _check_every_key_used(config, configs)
    from ember.store.models import resolve_model_name

    model = resolve_model_name(model)
    if selection == PRIORITY:
        return _compile_by_priority(core, model, candidates, configs, config, fallback_allowed)
    if len(candidates) == 1:
        return _compile_first(core, model, candidates, configs, config,
                              "the only candidate")
    memory = ChoiceMemory(core, model, candidates, config)
    choice = memory.recall()
    if choice is not None:
        log.info("AUTO: %s remembered as the fastest in %s; compiling for it without "
                 "measuring", choice.device, memory.where)
        order = [choice.device, *(c for c in candidates if c != choice.device)]
        return _compile_first(core, model, order, configs, config,
                              f"remembered in {memory.where}: {_describe(choice)}")
    fallback = next((c for c in candidates if split_device_name(c)[0] == _FALLBACK), None)
    if fallback is not None and fallback_allowed:
        try:
            first = core.compile_model(model, fallback, configs[fallback])
        except EmberError as exc:  # CPU cannot serve meanwhile: measure the others now
            log.warning("AUTO: %s cannot serve while the others are measured (%s)",
                        fallback, exc)
        else:
            others = [c for c in candidates if c != fallback]
            auto = AutoCompiledModel(first, candidates, config,
                                     f"measuring: {fallback} serves while "
                                     f"{', '.join(others)} are compiled and timed")
            auto._start(auto._measure_others, core, model, others, configs, memory)
            return auto
    return _measure_now(core, model, candidates, configs, config, memory)


def _compile_by_priority(core: Core, model: ModelSource, candidates: list[str],
                         configs: Mapping[str, dict], config: Mapping[str, Any],
                         fallback_allowed: bool) -> AutoCompiledModel:
    """OpenVINO's AUTO: the first candidate that compiles, with CPU serving meanwhile."""
    target = candidates[0]
    reason = f"priority: {target} is the first candidate"
    fallback = next((c for c in candidates[1:] if split_device_name(c)[0] == _FALLBACK), None)
    ready = _ReadyMark(core, model, target, configs[target])
    if fallback is None or not fallback_allowed or ready.is_marked():
        return _compile_first(core, model, candidates, configs, config, reason)
    try:
        first = core.compile_model(model, fallback, configs[fallback])
    except EmberError as exc:  # CPU cannot serve it: the target, compiled now, must
        log.warning("AUTO: %s cannot serve while %s compiles (%s)", fallback, target, exc)
        return _compile_first(core, model, candidates, configs, config, reason)
    auto = AutoCompiledModel(first, candidates, config,
                             f"priority: {fallback} serves while {target} compiles")
    auto._start(auto._compile_target, core, model, target, configs[target], ready)
    return auto


def _measure_now(core: Core, model: ModelSource, candidates: list[str],
                 configs: Mapping[str, dict], config: Mapping[str, Any],
                 memory: ChoiceMemory) -> AutoCompiledModel:
    """Compile for every candidate and measure them, in ``compile_model`` (no CPU to serve)."""
    # CPU, timed first, sets the bar: a slow device's first inference is then not waited for
    order = sorted(candidates, key=lambda c: split_device_name(c)[0] != _FALLBACK)
    compiled, failures = _compile_each(core, model, order, configs, background=False)
    if not compiled:
        raise NotSupportedError("AUTO: no candidate device compiled the model: "
                                + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    try:
        winner, reason = _choose(compiled, _generated(next(iter(compiled.values()))),
                                 failures, memory)
    except auto_exit.Cancelled:  # compile_model called while the process ends: no result
        winner = next(iter(compiled))
        reason = f"not measured: the process is ending; {winner} is the first candidate"
    return AutoCompiledModel(compiled[winner], candidates, config, reason)


def _compile_each(core: Core, model: ModelSource, candidates: list[str],
                  configs: Mapping[str, dict], background: bool = True,
                  ) -> tuple[dict[str, CompiledModel], dict[str, str]]:
    """The candidates that compile, and why the others did not; in the background,
    :class:`ember.runtime.auto_exit.Cancelled` once the process begins to end."""
    compiled: dict[str, CompiledModel] = {}
    failures: dict[str, str] = {}
    for name in candidates:
        if background:
            auto_exit.check()
        try:
            compiled[name] = core.compile_model(model, name, configs[name])
        except EmberError as exc:
            if background:  # failed because the interpreter is shutting down: not a failure
                auto_exit.check()
            failures[name] = f"it did not compile: {str(exc)[:200]}"
            log.warning("AUTO: compiling for %s failed (%s); it is not a candidate", name, exc)
    return compiled, failures


def _generated(compiled: CompiledModel) -> list[list[np.ndarray]]:
    return [generated_inputs(compiled.inputs, size) for size in DYNAMIC_SIZES]


def _choose(compiled: Mapping[str, CompiledModel], inputs: list[list[np.ndarray]],
            failures: Mapping[str, str], memory: ChoiceMemory | None,
            pause_app: AppPause | None = None) -> tuple[str, str]:
    """The fastest of ``compiled`` (the first to try first) and why; remembered when timed
    and ``memory`` is given."""
    found = measure(compiled, inputs, pause_app)
    measured = Measurement(found.seconds, {**failures, **found.left_out})
    winner = found.fastest
    if winner is None:  # nothing ran the inputs: the first in order, and measure next time
        first = next(iter(compiled))
        log.warning("AUTO: no candidate could be timed (%s); %s serves", measured.describe(),
                    first)
        return first, f"not measured: {measured.describe()}; {first} is the first candidate"
    choice = Choice(winner, measured.seconds, measured.left_out)
    log.info("AUTO: measured %s; %s serves", measured.describe(), winner)
    if memory is None:
        return winner, (f"measured: {_describe(choice)}; not remembered: timed on made-up "
                        f"input sizes, the next start measures again")
    memory.remember(choice)
    return winner, f"measured: {_describe(choice)}"


def _describe(choice: Choice) -> str:
    return (f"{choice.device} was the fastest "
            f"({Measurement(choice.seconds, choice.left_out).describe()})")


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
    return one_name_per_device(core, ordered)


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
                   configs: Mapping[str, dict], config: Mapping[str, Any],
                   reason: str) -> AutoCompiledModel:
    """The first candidate that compiles, as OpenVINO's AUTO falls back on a failed compile."""
    failures = []
    for index, name in enumerate(candidates):
        try:
            compiled = core.compile_model(model, name, configs[name])
            if index:
                reason = f"{reason}; {', '.join(candidates[:index])} did not compile"
            return AutoCompiledModel(compiled, candidates, config, reason)
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
    when it starts (follows :class:`ember.contract.device.DeviceModel`)."""

    def __init__(self, first: CompiledModel) -> None:
        self.current = first
        self.inputs: Sequence[Port] = first.inputs
        self.outputs: Sequence[Port] = first.outputs
        self.switched = threading.Event()
        self.last_inputs: list[np.ndarray] | None = None  # for the target's warm-up
        self.inferred = threading.Event()  # the application ran an inference
        # The application's inferences while AUTO measures: held back while a device's turn is
        # timed (they would share the cores with it), and counted so that a turn starts once
        # none runs.
        self._gate = threading.Condition()
        self._running = 0
        self._waiting = 0  # held back by a turn
        self._held = False

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.switched.is_set():
            return list(self.current.device_model.infer(inputs))
        self.last_inputs = [np.array(a, copy=True) for a in inputs]
        with self._gate:
            if self._held:
                self._waiting += 1
                while self._held:
                    self._gate.wait()
                self._waiting -= 1
                self._gate.notify_all()
            self._running += 1
        self.inferred.set()
        current = self.current  # read after any wait, once: the whole inference runs on it
        try:
            return list(current.device_model.infer(inputs))
        finally:
            with self._gate:
                self._running -= 1
                if not self._running:
                    self._gate.notify_all()

    @contextmanager
    def paused(self) -> Iterator[bool]:
        """Hold the application's new inferences back for a timed turn; True when none of its
        inferences was running as the turn began (a running one is waited for a moment).

        Inferences the last turn held back start first and the application then has
        ``APP_WINDOW`` seconds to itself: turns following each other at once would starve an
        application that infers in a loop for the whole measuring."""
        with self._gate:
            held_back = self._gate.wait_for(lambda: not self._waiting, APP_CALL_WAIT) and \
                self._running > 0
        if held_back:
            time.sleep(APP_WINDOW)
        with self._gate:
            self._held = True
            quiet = self._gate.wait_for(lambda: not self._running, APP_CALL_WAIT)
        try:
            yield quiet
        finally:
            with self._gate:
                self._held = False
                self._gate.notify_all()

    def switch(self, target: CompiledModel) -> None:
        self.current = target
        self.last_inputs = None
        self.switched.set()


class AutoCompiledModel(CompiledModel):
    """A model compiled by AUTO: a CompiledModel whose device may change once, from the one that
    serves first to the one chosen."""

    def __init__(self, first: CompiledModel, candidates: list[str],
                 config: Mapping[str, Any], reason: str) -> None:
        self._switch = _Switch(first)
        self.candidates = list(candidates)
        self.target_error: BaseException | None = None
        self.reason = reason
        self._target_thread: threading.Thread | None = None
        super().__init__(self._switch, _DESCRIPTION, config, _export_current,
                         loaded_from_cache=False)
        self._settle(first, reason)  # until background work starts

    @property
    def current(self) -> CompiledModel:
        """The compiled model serving inferences now."""
        return self._switch.current

    def wait_for_target(self, timeout: float | None = None) -> bool:
        """Wait (seconds) for the background work (compiling, measuring); True once the device
        chosen serves (Ember's addition: OpenVINO has no way to wait for it)."""
        self._switch.switched.wait(timeout)
        return self._switch.switched.is_set() and self.target_error is None

    def _start(self, work: Callable[..., None], *args: Any) -> None:
        self._switch.switched.clear()
        self.device_model, self._infer_feeds = self._switch, None
        try:
            self._target_thread = auto_exit.start(work, *args, name="ember-auto")
        except auto_exit.Cancelled:  # compiled while the process ends: no background work
            self._settle(self.current, f"not measured: the process is ending; "
                         f"{self.current.device.name} serves")

    def _settle(self, compiled: CompiledModel, reason: str) -> None:
        """Serve every later inference on ``compiled``, called directly: once settled, an AUTO
        inference costs what one on that device does."""
        self.reason = reason
        self._switch.switch(compiled)
        self._infer_feeds = compiled._infer_feeds  # read once per call: either is right
        self.device_model = compiled.device_model

    def _compile_target(self, core: Core, model: ModelSource, target: str,
                        config: dict[str, Any], ready: _ReadyMark) -> None:
        """PRIORITY's background work: compile the first candidate and switch to it."""
        try:
            auto_exit.check()
            compiled = core.compile_model(model, target, config)
            warm_up = self._switch.last_inputs
            if warm_up is not None:  # a dynamic model builds per shape: not while serving
                auto_exit.check()
                compiled._infer_arrays(warm_up)
        except auto_exit.Cancelled:
            self._settle(self.current, f"priority: the process ended before {target} was "
                         f"ready; {self.current.device.name} serves")
            return
        except Exception as exc:  # the CPU keeps serving; the failure is kept and logged
            if auto_exit.ending():  # failed because the interpreter is shutting down
                self._settle(self.current, f"priority: the process ended before {target} "
                             f"was ready; {self.current.device.name} serves")
                return
            self.target_error = exc
            log.warning("AUTO: compiling for %s failed (%s); inferences stay on %s",
                        target, exc, self.current.device.name)
            self._settle(self.current, f"priority: {target} failed to compile ({exc}); "
                         f"{self.current.device.name} serves")
            return
        self._settle(compiled, f"priority: {target} is the first candidate")
        log.info("AUTO: %s is ready; inferences now run there", target)
        ready.mark()

    def _measure_others(self, core: Core, model: ModelSource, others: list[str],
                        configs: Mapping[str, dict], memory: ChoiceMemory) -> None:
        """MEASURE's background work: compile the other candidates, time them all against the
        device serving, and settle on the fastest."""
        serving = self.current
        try:
            compiled, failures = _compile_each(core, model, others, configs)
            guessed = sizes_guessed(serving.inputs)
            if guessed:  # made-up sizes can rank the devices wrongly: wait for the app's
                self._wait_for_application_input(APP_INPUT_WAIT)
            seen = self._switch.last_inputs
            inputs = [seen] if seen is not None else _generated(serving)
            # a choice timed on made-up sizes serves this process only: the next start
            # measures again, on the application's inputs if it runs one by then
            winner, reason = _choose({serving.device.name: serving, **compiled}, inputs,
                                     failures, None if seen is None and guessed else memory,
                                     self._switch.paused)
            chosen = compiled.get(winner, serving)
        except Exception as exc:  # the device serving keeps serving; the failure is logged
            if isinstance(exc, auto_exit.Cancelled) or auto_exit.ending():
                # quietly, and nothing remembered: the next start measures again
                log.debug("AUTO: the process is ending; measuring stopped (%r)", exc)
                self._settle(serving, f"not measured: the process ended while measuring; "
                             f"{serving.device.name} serves")
                return
            self.target_error = exc
            log.warning("AUTO: measuring failed (%s); inferences stay on %s",
                        exc, serving.device.name)
            self._settle(serving, f"not measured ({exc}); {serving.device.name} serves")
            return
        if chosen is not serving and self._switch.last_inputs is not None \
                and not auto_exit.ending():
            try:  # the shapes seen since measuring: build them before serving them
                chosen._infer_arrays(self._switch.last_inputs)
            except Exception as exc:
                log.warning("AUTO: %s failed on an input %s ran (%s); %s serves",
                            winner, serving.device.name, exc, serving.device.name)
                chosen, reason = serving, f"{reason}; {winner} failed on an input, so " \
                                          f"{serving.device.name} serves"
        self._settle(chosen, reason)
        log.info("AUTO: inferences now run on %s", chosen.device.name)

    def _wait_for_application_input(self, limit: float) -> None:
        deadline = time.perf_counter() + limit
        while not self._switch.inferred.is_set() and (left := deadline - time.perf_counter()) > 0:
            self._switch.inferred.wait(min(left, 0.05))
            auto_exit.check()  # the process is ending: stop waiting

    def _properties(self) -> dict[str, Any]:
        current = self.current
        values = current._properties()
        values.update({k: v for k, v in self.config.items() if k not in values})
        values[props.EXECUTION_DEVICES] = [current.device.name]
        values[props.DEVICE_PRIORITIES] = ",".join(self.candidates)
        values[props.AUTO_CHOICE] = self.reason
        values[props.SUPPORTED_PROPERTIES] = sorted({*values, props.SUPPORTED_PROPERTIES})
        return values

    def __repr__(self) -> str:
        return (f"<CompiledModel on AUTO ({self.current.device.name} now; "
                f"candidates {','.join(self.candidates)})>")


def _export_current(compiled: CompiledModel) -> bytes:
    assert isinstance(compiled, AutoCompiledModel)
    return compiled.current.export_model()
