"""Finding, loading and isolating device plugins, one device kind at a time.

:func:`load_plugins` is the one factory: it builds a fresh :class:`Plugins` each time (never an
import-time global) from the entry points of the group ``ember.devices`` (found through
:mod:`ember.contract.plugin_index`, without reading every distribution's metadata), minus those
``EMBER_DISABLE_PLUGINS`` names. It imports nothing: a plugin is imported the first time a device
of its kind is asked for, so ``Core()`` and ``set_property({"CACHE_DIR": ...})`` load no plugin,
and ``compile_model(path, "CPU")`` loads only the plugin that provides CPU.

An entry point's name is the device kind its plugin provides (``CPU = "ember_cpu.plugin"``),
compared without regard to case; a plugin providing several kinds has one entry point per kind. A
plugin that lists a device of a kind it did not declare is refused that device. When two
distributions declare the same kind, neither gets it until the user says which one
(``EMBER_DEVICE_PLUGINS="CPU=ember-cpu"``, or ``EMBER_DISABLE_PLUGINS``, or uninstalling one):
a device name is never decided by the order in which entry points happen to be found.
``EMBER_DEVICE_ALIASES="CPU=OPENVINO"`` serves a name with another device
(:mod:`ember.contract.aliases`).

A broken plugin (an import error, a bad hook signature, an unknown hook name, an exception while
listing devices) is recorded as a :class:`~ember.contract.plugin_failure.PluginFailure` with its
name while every other device keeps working. :class:`Plugins` is the typed facade over pluggy's
manager: one method per hook, every call through pluggy, by keyword, and only to the plugin that
owns the device.
"""

from __future__ import annotations

import _thread  # threading's RLock, without importing threading (~1 ms of a warm start)
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ember.common.log import get_logger
from ember.common.record import Record
from ember.contract.device import split_device_name
from ember.contract.plugin_index import EntryPointRecord, find_entry_points
from ember.errors import BackendCompileError, DeviceConflictError, EmberError, PluginError

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy

    from ember.cache.kernel_cache import KernelCache
    from ember.contract.device import DeviceModel
    from ember.contract.plugin_failure import PluginFailure
    from ember.model.model import Model

ENTRY_POINT_GROUP = "ember.devices"
DISABLE_ENV = "EMBER_DISABLE_PLUGINS"
#: ``KIND=distribution`` pairs, comma-separated: which plugin provides a contested device kind.
CHOICE_ENV = "EMBER_DEVICE_PLUGINS"
#: ``NAME=TARGET`` pairs, comma-separated: a device name served by another device
#: (ember.contract.aliases).
ALIAS_ENV = "EMBER_DEVICE_ALIASES"

log = get_logger("ember.plugins")


class PluginInfo(Record):
    """A registered plugin: its entry-point name and the distribution that ships it.

    ``notes`` are problems its author should fix that do not stop it from loading.
    """

    _fields = ("name", "distribution", "version", "notes")
    __slots__ = _fields

    def __init__(self, name: str, distribution: str | None = None, version: str | None = None,
                 notes: tuple[str, ...] = ()) -> None:
        self.name = name
        self.distribution = distribution
        self.version = version
        self.notes = notes

    def __str__(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return self.name


class Plugins:
    """The plugins of one Core: found, loaded as their device kinds are asked for, and called."""

    def __init__(self, find: Callable[[], Sequence[EntryPointRecord]] = tuple,
                 choices: Mapping[str, str] | None = None,
                 aliases: Mapping[str, str] | None = None) -> None:
        """:param find: gives the entry points; called when a device is first named.
        :param aliases: device names served by another device (``EMBER_DEVICE_ALIASES``)."""
        self.aliases = dict(aliases or {})
        self.infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self._manager: pluggy.PluginManager | None = None
        self._find = find
        self._entry_points: dict[str, list[EntryPointRecord]] | None = None
        self._choices = {kind.upper(): name for kind, name in (choices or {}).items()}
        self._chosen: dict[str, EntryPointRecord | None] = {}  # kind -> its provider, decided
        self._conflicts: dict[str, DeviceConflictError] = {}
        self._loaded: set[str] = set()  # entry-point values imported (or tried)
        self._kinds: dict[str, set[str] | None] = {}  # plugin -> declared kinds (None: any)
        self._unlisted: list[str] = []  # registered plugins not yet asked for their devices
        self._owners: dict[str, str] = {}  # device -> plugin
        self._callers: dict[tuple[str, str], Callable[..., Any]] = {}
        # One Core may be used from several threads: loading and listing happen once, under it.
        self._lock = _thread.RLock()

    # -- registration ------------------------------------------------------------------------

    def register(self, plugin: object, info: PluginInfo, kinds: set[str] | None = None) -> bool:
        """Register one plugin; on any contract violation record a failure and return False.

        :param kinds: the device kinds it may list (from its entry points); None for any.
        """
        with self._lock:
            return self._register(plugin, info, kinds)

    def _register(self, plugin: object, info: PluginInfo, kinds: set[str] | None) -> bool:
        from ember.contract import hookspecs

        notes = list(info.notes)
        declared = getattr(plugin, "EMBER_CONTRACT_VERSION", None)
        if declared is None:
            notes.append(f"it does not say which plugin contract it was written for: add "
                         f"EMBER_CONTRACT_VERSION = {hookspecs.CONTRACT_VERSION} to its module")
        elif declared not in hookspecs.SUPPORTED_CONTRACT_VERSIONS:
            self._fail(info, "register", PluginError(
                f"it was written for Ember's plugin contract {declared!r}; this Ember speaks "
                f"contract {hookspecs.CONTRACT_VERSION}: install versions that match"))
            return False
        manager = self._pluggy()
        try:
            manager.register(plugin, name=info.name)
            # Rejects hook implementations whose names match no spec (typos, stale hooks).
            manager.check_pending()
        except Exception as exc:  # pluggy's validation error, or anything a plugin raises
            if manager.has_plugin(info.name):
                manager.unregister(name=info.name)
            self._fail(info, "register", exc)
            return False
        info = PluginInfo(info.name, info.distribution, info.version, tuple(notes))
        for note in notes:
            log.info("plugin %s: %s", info, note)
        self.infos[info.name] = info
        self._kinds[info.name] = kinds
        self._unlisted.append(info.name)
        self._callers.clear()  # subset callers name the plugins to leave out, as of now
        return True

    @property
    def manager(self) -> pluggy.PluginManager:
        """pluggy's manager, for tools that inspect hook implementations (the conformance kit)."""
        return self._pluggy()

    def _pluggy(self) -> pluggy.PluginManager:
        if self._manager is None:
            import pluggy  # here: a Core that loads no plugin never imports it

            from ember.contract import hookspecs

            self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            self._manager.add_hookspecs(hookspecs)
        return self._manager

    def _fail(self, info: PluginInfo | EntryPointRecord, stage: str,
              exc: BaseException) -> None:
        import traceback  # only when something failed

        from ember.contract.plugin_failure import PluginFailure

        failure = PluginFailure(info.name, info.distribution, stage, _describe(exc),
                                "".join(traceback.format_exception(exc)))
        log.warning("%s", failure)
        log.debug("%s", failure.details)
        self.failures.append(failure)

    # -- loading, one device kind at a time ----------------------------------------------------

    @property
    def _by_kind(self) -> dict[str, list[EntryPointRecord]]:
        """Every entry point, by the device kind it declares (found on first use)."""
        if self._entry_points is None:
            self._entry_points = {}
            for record in self._find():
                self._entry_points.setdefault(record.name.upper(), []).append(record)
        return self._entry_points

    def _load_kind(self, kind: str) -> None:
        """Import and register the plugin whose entry point declares ``kind``, if not done."""
        record = self._provider(kind.upper())
        if record is None or record.value in self._loaded:
            return
        self._loaded.add(record.value)
        if record.problem:  # installed with --no-deps, or next to an upgraded core
            self._fail(record, "compatibility", PluginError(record.problem))
            return
        try:
            plugin = record.load()
        except Exception as exc:  # ImportError, SyntaxError, anything a broken package raises
            self._fail(record, "import", exc)
            return
        # A plugin with several entry points (one per kind) is registered once, with every kind
        # it was chosen for.
        kinds = {other for other in self._by_kind
                 if (provider := self._provider(other)) is not None
                 and provider.value == record.value
                 and _distribution_key(provider) == _distribution_key(record)}
        info = PluginInfo(record.name, record.distribution, record.version, tuple(record.notes))
        self.register(plugin, info, kinds)

    def _provider(self, kind: str) -> EntryPointRecord | None:
        """The entry point that provides ``kind``: the only distribution declaring it, or the
        one the user chose; None when there is none or the choice is the user's to make."""
        if kind in self._chosen:
            return self._chosen[kind]
        unique: dict[str, EntryPointRecord] = {}
        for record in self._by_kind.get(kind, []):  # a distribution seen twice: keep the first
            unique.setdefault(_distribution_key(record), record)
        chosen_name = self._choices.get(kind)
        provider = None
        if len(unique) == 1:
            provider = next(iter(unique.values()))
        elif chosen_name is not None and _normalise(chosen_name) in unique:
            provider = unique[_normalise(chosen_name)]
        elif unique:
            contenders = [f"{r.distribution or r.name} {r.version or ''}".strip()
                          + f" (entry point {r.name!r})" for r in unique.values()]
            conflict = DeviceConflictError(kind, contenders, chosen=chosen_name)
            self._conflicts[kind] = conflict
            for record in unique.values():
                self._fail(record, "conflict", conflict)
        self._chosen[kind] = provider
        return provider

    def load_all(self) -> None:
        """Load every plugin (listing every device needs them all)."""
        with self._lock:
            for kind in list(self._by_kind):
                self._load_kind(kind)

    def conflict(self, kind: str) -> DeviceConflictError | None:
        """The conflict that keeps every plugin from ``kind`` until the user chooses, if any."""
        with self._lock:
            self._provider(kind.upper())
            return self._conflicts.get(kind.upper())

    # -- devices -----------------------------------------------------------------------------

    @property
    def device_owners(self) -> Mapping[str, str]:
        """Every available device name mapped to the name of the plugin that provides it."""
        with self._lock:
            self.load_all()
            self._list_devices()
            owners = dict(self._owners)
        # an alias is listed while its target is available, owned by the target's plugin
        for name in self.aliases:
            target = self.resolve(name)
            if target is None:
                owners.pop(name, None)
            else:
                owners[name] = owners[target]
        return owners

    def serving_name(self, device_name: str) -> str:
        """The name that serves ``device_name``: the end of its alias chain (itself when it is
        no alias). :raises DeviceAliasError: the aliases form a cycle."""
        if not self.aliases:  # the usual case: ember.contract.aliases is not even imported
            return device_name
        from ember.contract.aliases import alias_chain

        return alias_chain(self.aliases, device_name, ALIAS_ENV)[-1]

    def _list_devices(self) -> None:
        """Ask each registered plugin that has not been asked yet for its devices."""
        while self._unlisted:
            plugin_name = self._unlisted.pop(0)
            info = self.infos[plugin_name]
            try:  # each plugin on its own, so that one plugin's exception stays its own
                answers = self._caller("list_devices", plugin_name)()
                names = [name for answer in answers for name in answer]
                if not all(isinstance(n, str) and n for n in names):
                    raise PluginError(f"list_devices returned {names!r}, not device names")
            except Exception as exc:
                self._fail(info, "list_devices", exc)
                continue
            kinds = self._kinds[plugin_name]
            for name in names:
                kind = split_device_name(name)[0]
                if kinds is not None and kind.upper() not in kinds:
                    self._fail(info, "list_devices", PluginError(
                        f"it lists device {name!r}, but its entry points declare only "
                        f"{', '.join(sorted(kinds))}: an entry point's name in the group "
                        f"{ENTRY_POINT_GROUP} is the device kind it provides"))
                elif name in self._owners:
                    self._fail(info, "list_devices", PluginError(
                        f"device {name!r} is already provided by plugin {self._owners[name]!r}"))
                else:
                    self._owners[name] = plugin_name

    def resolve(self, device_name: str) -> str | None:
        """The full name of a device (``"GPU"`` -> ``"GPU.0"``), or None when there is none.

        Loads only the plugins that declare the name's kind (and those registered by hand). An
        alias resolves to its target's full name.
        """
        device_name = self.serving_name(device_name)
        base, index = split_device_name(device_name)
        with self._lock:
            self._load_kind(base)
            self._list_devices()
            owners = dict(self._owners)
        if device_name in owners:
            return device_name
        if index is None and base == device_name:  # a bare kind names its first device
            indexed = sorted((n for n in owners if split_device_name(n)[0] == base),
                             key=lambda n: split_device_name(n)[1] or 0)
            if indexed:
                return indexed[0]
        elif index == 0 and base in owners:
            return base  # "TEMPLATE.0" names the only TEMPLATE device
        return None

    def owner(self, device_name: str) -> PluginInfo:
        return self.infos[self._owners[device_name]]  # resolved, so listed, already

    # -- hooks: one typed method each, every call through pluggy -------------------------------

    def explain_absence(self, device_kind: str) -> str | None:
        """What the plugins say about a device kind none of them lists (never raises)."""
        self.load_all()
        for plugin_name in reversed(list(self.infos)):
            try:
                reason = self._caller("explain_absence", plugin_name)(device_kind=device_kind)
            except Exception as exc:  # a hint must not turn into a second error
                log.debug("explain_absence of %s raised %r", plugin_name, exc)
                continue
            if reason:
                return str(reason)
        return None

    def supported_metrics(self, device_name: str) -> Mapping[str, Any] | None:
        return self._dispatch("supported_metrics", device_name)

    def compile(self, device_name: str, *, model: Model, config: Mapping[str, Any],
                cache: KernelCache | None) -> DeviceModel | None:
        """The plugin's ``compile``; anything it raises that is not one of Ember's errors (its
        backend's ValueError, a bug) becomes a BackendCompileError naming the plugin and the
        device, with the original chained, so that the user sees who failed without --debug."""
        try:
            return self._dispatch("compile", device_name, model=model, config=config, cache=cache)
        except EmberError:
            raise
        except Exception as exc:
            raise BackendCompileError(device_name, f"{type(exc).__name__}: {exc}",
                                      plugin=str(self.owner(device_name))) from exc

    def export_model(self, device_name: str, *, compiled_model: DeviceModel,
                     config: Mapping[str, Any], weightless: bool) -> bytes | None:
        return self._dispatch("export_model", device_name, compiled_model=compiled_model,
                              config=config, weightless=weightless)

    def import_model(self, device_name: str, *, data: bytes | memoryview,
                     config: Mapping[str, Any], weights_path: Path | None) -> DeviceModel | None:
        return self._dispatch("import_model", device_name, data=data, config=config,
                              weights_path=weights_path)

    def _dispatch(self, hook_name: str, device_name: str, **kwargs: Any) -> Any:
        """Call a dispatch hook on the plugin that owns ``device_name`` only."""
        return self._caller(hook_name, self._owners[device_name])(device_name=device_name,
                                                                   **kwargs)

    def _caller(self, hook_name: str, plugin_name: str) -> Callable[..., Any]:
        """pluggy's caller of one hook restricted to one plugin (pluggy passes each
        implementation only the arguments it declares)."""
        caller = self._callers.get((hook_name, plugin_name))
        if caller is None:
            manager = self._pluggy()
            others = [p for name, p in manager.list_name_plugin() if name != plugin_name]
            caller = manager.subset_hook_caller(hook_name, remove_plugins=others)
            self._callers[(hook_name, plugin_name)] = caller
        return caller


def load_plugins(*, group: str = ENTRY_POINT_GROUP, disabled: str | None = None,
                 load_entry_points: bool = True) -> Plugins:
    """Find the installed device plugins that are not disabled; import none of them yet.

    :param group: the entry-point group to load.
    :param disabled: comma-separated entry-point or distribution names to skip; defaults to the
        ``EMBER_DISABLE_PLUGINS`` environment variable.
    :param load_entry_points: False gives no plugins at all (for ``Core.register_plugin``).
    """
    if not load_entry_points:
        return Plugins()
    if disabled is None:
        disabled = os.environ.get(DISABLE_ENV, "")
    blocked = {_normalise(name) for name in disabled.split(",") if name.strip()}

    def find() -> list[EntryPointRecord]:
        return [r for r in find_entry_points(group)
                if _normalise(r.name) not in blocked
                and not (r.distribution and _normalise(r.distribution) in blocked)]

    aliases = os.environ.get(ALIAS_ENV, "")
    if aliases.strip():
        from ember.contract.aliases import parse_aliases

        return Plugins(find, _choices(os.environ.get(CHOICE_ENV, "")),
                       parse_aliases(aliases, ALIAS_ENV))
    return Plugins(find, _choices(os.environ.get(CHOICE_ENV, "")))


def _choices(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(",") if item.strip())
    return {kind.strip(): name.strip() for kind, _, name in pairs if kind.strip()}


def _normalise(name: str) -> str:
    """Distribution names compare as the packaging standards say: case and -_. do not count."""
    return "-".join(name.strip().lower().replace("_", "-").replace(".", "-").split("-"))


def _distribution_key(record: EntryPointRecord) -> str:
    return _normalise(record.distribution or record.name)


def _describe(exc: BaseException) -> str:
    """One line a user can act on: the exception, every line of its message (pluggy names the
    offending argument on the third), and where in the plugin it was raised."""
    import traceback

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {' '.join(lines)}" if lines else type(exc).__name__
    # The innermost frame in the plugin's own code (a SyntaxError names its line itself).
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _in_plugin(f.filename)]
    if frames and not isinstance(exc, SyntaxError):
        text += f" ({frames[-1].filename}, line {frames[-1].lineno})"
    return text


# Frames of the machinery that loads and calls plugins, not of the plugin itself.
_NOT_THE_PLUGINS = ("<frozen ", os.path.dirname(__file__), os.path.dirname(os.__file__))
# Installed packages: under the standard library's directory when installed without a virtual
# environment, yet a plugin's own.
_INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


def _in_plugin(filename: str) -> bool:
    """Whether a frame's file is a plugin's, not Ember's, pluggy's or the standard library's."""
    if f"{os.sep}pluggy{os.sep}" in filename:
        return False
    return (not filename.startswith(_NOT_THE_PLUGINS)
            or (any(part in filename for part in _INSTALLED)
                and not filename.startswith(os.path.dirname(__file__))))
