"""Finding, loading and isolating device plugins.

:func:`load_plugins` is the one factory: it builds a fresh pluggy manager each time (never an
import-time global), loads the entry points of the group ``ember.devices`` unless
``EMBER_DISABLE_PLUGINS`` names them, and registers each plugin on its own so that a broken
third-party plugin (an import error, a bad hook signature, an unknown hook name, an exception while
listing devices) is recorded as a :class:`PluginFailure` with its name while every other device
keeps working. :class:`Plugins` is the typed facade over the manager: the core calls hooks only
through it, by keyword, and only the plugin that owns a device is asked about that device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from ember import hookspecs
from ember._version import __version__
from ember.device import split_device_name
from ember.errors import PluginError

ENTRY_POINT_GROUP = "ember.devices"
DISABLE_ENV = "EMBER_DISABLE_PLUGINS"

log = logging.getLogger("ember.plugins")


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin: its entry-point name and the distribution that ships it."""

    name: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return self.name


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why; shown by ``Core.plugin_failures``."""

    name: str
    distribution: str | None
    stage: str  # "compatibility", "import", "register" or "list_devices"
    error: str

    def __str__(self) -> str:
        where = f" ({self.distribution})" if self.distribution else ""
        return f"plugin {self.name!r}{where} failed at {self.stage}: {self.error}"


@dataclass
class Plugins:
    """The loaded plugins, their devices and their failures; the only caller of hooks."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    _owners: dict[str, str] = field(default_factory=dict)  # device -> plugin, found lazily
    _discovered: int = 0  # how many plugins have been asked for their devices
    _callers: dict[tuple[str, str], Callable[..., Any]] = field(default_factory=dict)

    # -- registration ------------------------------------------------------------------------

    def register(self, plugin: object, info: PluginInfo) -> bool:
        """Register one plugin; on any contract violation record a failure and return False."""
        declared = getattr(plugin, "EMBER_CONTRACT_VERSION", hookspecs.CONTRACT_VERSION)
        if declared not in hookspecs.SUPPORTED_CONTRACT_VERSIONS:
            self._fail(info, "register", PluginError(
                f"it was written for Ember's plugin contract {declared!r}; ember {__version__} "
                f"speaks contract {hookspecs.CONTRACT_VERSION}: install versions that match"))
            return False
        try:
            self.manager.register(plugin, name=info.name)
        except Exception as exc:  # a third-party plugin may raise anything: isolate it
            self._fail(info, "register", exc)
            return False
        try:
            # Rejects hook implementations whose names match no spec (typos, stale hooks).
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self.manager.unregister(name=info.name)
            self._fail(info, "register", exc)
            return False
        self.infos[info.name] = info
        self._callers.clear()
        return True

    def _fail(self, info: PluginInfo, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(info.name, info.distribution, stage, _describe(exc))
        log.warning("%s", failure)
        self.failures.append(failure)

    # -- devices -----------------------------------------------------------------------------

    @property
    def device_owners(self) -> Mapping[str, str]:
        """Every available device name mapped to the name of the plugin that provides it."""
        while self._discover_next():
            pass
        return self._owners

    def _discover_next(self) -> bool:
        """Ask the next plugin (in registration order) for its devices; False when none is left.

        Plugins are asked one at a time, and only as far as needed: compiling for CPU does not
        make the GPU plugin probe OpenCL. The first plugin to list a device keeps it.
        """
        impls = self.manager.hook.list_devices.get_hookimpls()  # in registration order
        if self._discovered >= len(impls):
            return False
        impl = impls[self._discovered]
        self._discovered += 1
        info = self.infos[impl.plugin_name]
        try:  # each plugin on its own, so that one plugin's exception stays its own
            names = list(impl.function())
            if not all(isinstance(n, str) and n for n in names):
                raise PluginError(f"list_devices returned {names!r}, not device names")
        except Exception as exc:
            self._fail(info, "list_devices", exc)
            return True
        for name in names:
            if name in self._owners:
                self._fail(info, "list_devices", PluginError(
                    f"device {name!r} is already provided by plugin {self._owners[name]!r}"))
                continue
            self._owners[name] = impl.plugin_name
        return True

    def resolve(self, device_name: str) -> str | None:
        """The full name of a device (``"GPU"`` -> ``"GPU.0"``), or None when there is none."""
        base, index = split_device_name(device_name)
        while True:
            owners = self._owners
            if device_name in owners:
                return device_name
            if index is None:
                indexed = sorted((n for n in owners if split_device_name(n)[0] == base),
                                 key=lambda n: split_device_name(n)[1] or 0)
                if indexed:
                    return indexed[0]
            elif index == 0 and base in owners:
                return base  # "TEMPLATE.0" names the only TEMPLATE device
            if not self._discover_next():
                return None

    def explain_absence(self, device_kind: str) -> str | None:
        """What the plugins say about a device kind none of them lists (never raises)."""
        for impl in reversed(self.manager.hook.explain_absence.get_hookimpls()):
            try:
                reason = impl.function(device_kind=device_kind)
            except Exception as exc:  # a hint must not turn into a second error
                log.debug("explain_absence of %s raised %r", impl.plugin_name, exc)
                continue
            if reason:
                return str(reason)
        return None

    def owner(self, device_name: str) -> PluginInfo:
        return self.infos[self._owners[device_name]]  # resolved, so discovered, already

    # -- dispatch ----------------------------------------------------------------------------

    def call(self, hook_name: str, device_name: str, **kwargs: Any) -> Any:
        """Call a dispatch hook on the plugin that owns ``device_name`` and return its answer."""
        plugin_name = self._owners[device_name]
        caller = self._callers.get((hook_name, plugin_name))
        if caller is None:
            others = [p for name, p in self.manager.list_name_plugin() if name != plugin_name]
            caller = self.manager.subset_hook_caller(hook_name, remove_plugins=others)
            self._callers[(hook_name, plugin_name)] = caller
        return caller(device_name=device_name, **kwargs)


def load_plugins(
    *, group: str = ENTRY_POINT_GROUP, disabled: str | None = None, load_entry_points: bool = True
) -> Plugins:
    """Build a plugin manager and register every installed device plugin that is not disabled.

    :param group: the entry-point group to load.
    :param disabled: comma-separated entry-point or distribution names to skip; defaults to the
        ``EMBER_DISABLE_PLUGINS`` environment variable.
    :param load_entry_points: False gives a manager with no plugins (for ``Core.register_plugin``).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    if not load_entry_points:
        return plugins
    if disabled is None:
        disabled = os.environ.get(DISABLE_ENV, "")
    blocked = {name.strip() for name in disabled.split(",") if name.strip()}
    for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
        info = _info(ep)
        if ep.name in blocked or (info.distribution and info.distribution in blocked):
            log.debug("plugin %s disabled by %s", ep.name, DISABLE_ENV)
            continue
        if ep.name in plugins.infos:
            continue  # the same distribution seen twice on sys.path: keep the first
        mismatch = _ember_requirement_mismatch(ep)
        if mismatch:  # installed with --no-deps, or next to an upgraded core: say so, load nothing
            plugins._fail(info, "compatibility", PluginError(mismatch))
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # ImportError, SyntaxError, anything a broken package raises
            plugins._fail(info, "import", exc)
            continue
        plugins.register(plugin, info)
    return plugins


def _ember_requirement_mismatch(ep: EntryPoint) -> str | None:
    """Why the plugin's declared range of ``ember`` versions excludes this one, or None."""
    from packaging.requirements import InvalidRequirement, Requirement

    for line in (ep.dist.requires or []) if ep.dist else []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if (requirement.name == "ember" and not requirement.marker
                and not requirement.specifier.contains(__version__, prereleases=True)):
            return (f"it requires ember{requirement.specifier}, and this is ember {__version__}: "
                    f"install a version of {ep.dist.metadata['Name']} made for this Ember")
    return None


def _info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    if dist is None:
        return PluginInfo(ep.name)
    return PluginInfo(ep.name, dist.metadata["Name"], dist.version)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
