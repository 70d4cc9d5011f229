"""Checks of the plugin contract that do not depend on the model: each returns the problems found,
every one phrased as what to fix, so that a test can report them all at once.

The plugin behind a device is found the way the core finds it (:func:`ember.contract.plugin_manager
.load_plugins`), and its hooks are called through the plugin manager, as tools may call them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ember
from ember import properties as props
from ember.contract import hookspecs
from ember.contract.device import split_device_name
from ember.contract.plugin_manager import PluginInfo, Plugins, load_plugins
from ember.errors import EmberError, UnknownPropertyError
from ember.model.model import Model

#: The optional metric in which a device lists the operators it runs ("Relu", or "domain::Op"
#: outside the default domain). Without it, a device is taken to claim what its compile accepts.
SUPPORTED_OPERATORS = props.SUPPORTED_OPERATORS
#: A device name no plugin may claim.
NO_SUCH_DEVICE = "EMBER_CONFORMANCE_NO_SUCH_DEVICE"
_CORE_KEYS = (*props.CORE_CONFIG_KEYS, props.CACHE_ENCRYPTION_CALLBACKS)
_UPPER_BOUNDS = ("<", "<=", "~=", "==", "===")


@dataclass(frozen=True)
class Owner:
    """The plugin that provides a device, as the core loaded it."""

    plugins: Plugins
    name: str
    plugin: object
    info: PluginInfo

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call one hook of this plugin only, through the plugin manager, by keyword."""
        return self.plugins._caller(hook, self.name)(**kwargs)

    def implements(self, hook: str) -> bool:
        impls = getattr(self.plugins.manager.hook, hook).get_hookimpls()
        return any(impl.plugin_name == self.name for impl in impls)

    @property
    def where(self) -> str:
        module = getattr(self.plugin, "__name__", type(self.plugin).__name__)
        return f"plugin {self.name!r} ({self.info.distribution or 'no distribution'}: {module})"


def resolve_device(device_name: str) -> str:
    """The device a name means, as ``Core`` resolves it (``"GPU"`` -> ``"GPU.0"``); the name
    itself when no installed device matches (the checks then say it is not listed)."""
    try:
        return next(iter(ember.Core().get_versions(device_name)))
    except EmberError:
        return device_name


def owner_of(device_name: str) -> Owner:
    """The installed plugin that lists ``device_name``; AssertionError saying why when none does."""
    device_name = resolve_device(device_name)
    plugins = load_plugins()
    owners = plugins.device_owners
    if device_name not in owners:
        failures = "; ".join(map(str, plugins.failures)) or "no plugin failed to load"
        raise AssertionError(f"no installed plugin lists device {device_name!r} (devices: "
                             f"{sorted(owners) or 'none'}; {failures})")
    name = owners[device_name]
    return Owner(plugins, name, plugins.manager.get_plugin(name), plugins.infos[name])


def dispatch_hooks() -> list[str]:
    """The hooks that take a device name, as ``ember.contract.hookspecs`` declares them."""
    manager = load_plugins(load_entry_points=False).manager
    return sorted(name for name, caller in vars(manager.hook).items()
                  if caller.spec is not None and "device_name" in caller.spec.argnames)


def foreign_device_names(device_name: str, owner: Owner) -> list[str]:
    """Names that are not the device's own: other plugins' devices, an index no device has, and a
    name nobody uses."""
    base, _ = split_device_name(device_name)
    others = [n for n, p in owner.plugins.device_owners.items() if p != owner.name]
    return sorted({*others, f"{base}.99", NO_SUCH_DEVICE})


def dispatch_problems(device_name: str, model: Model) -> list[str]:
    """Every dispatch hook, called with other devices' names, must return None."""
    device_name = resolve_device(device_name)
    owner = owner_of(device_name)
    arguments = {"model": model, "config": {}, "cache": None, "data": b"",
                 "compiled_model": object(), "weightless": False, "weights_path": None}
    problems = []
    for hook in dispatch_hooks():
        argnames = getattr(owner.plugins.manager.hook, hook).spec.argnames
        for foreign in foreign_device_names(device_name, owner):
            kwargs = {a: arguments.get(a) for a in argnames if a != "device_name"}
            try:
                answer = owner.call(hook, device_name=foreign, **kwargs)
            except Exception as exc:
                problems.append(f"{hook}(device_name={foreign!r}) raised {type(exc).__name__}: "
                                f"{exc}; return None at once for a device that is not yours")
                continue
            if answer is not None:
                problems.append(f"{hook}(device_name={foreign!r}) answered with a "
                                f"{type(answer).__name__}; it must return None for a device "
                                f"that is not {owner.name!r}'s (the hooks are firstresult)")
    return [f"{owner.where}: {p}" for p in problems]


def declaration_problems(device_name: str) -> list[str]:
    """The plugin says which contract it was written for and which ember versions it works with."""
    device_name = resolve_device(device_name)
    owner = owner_of(device_name)
    problems = []
    declared = getattr(owner.plugin, "EMBER_CONTRACT_VERSION", None)
    if declared is None:
        problems.append(f"declare the contract it was written for: EMBER_CONTRACT_VERSION = "
                        f"{hookspecs.CONTRACT_VERSION} in its entry-point module")
    elif declared not in hookspecs.SUPPORTED_CONTRACT_VERSIONS:
        problems.append(f"EMBER_CONTRACT_VERSION is {declared!r}; this ember speaks "
                        f"{sorted(hookspecs.SUPPORTED_CONTRACT_VERSIONS)}")
    if owner.info.distribution is None:
        problems.append("install it as a distribution with an ember.devices entry point")
        return [f"{owner.where}: {p}" for p in problems]
    from packaging.requirements import Requirement

    requires = importlib.metadata.distribution(owner.info.distribution).requires or []
    ember_requirements = [r for r in map(Requirement, requires)
                          if r.name == "ember" and r.marker is None]
    example = _example_range()
    if not ember_requirements:
        problems.append(f"declare the ember versions it works with in [project] dependencies, "
                        f"for example {example!r}")
    for requirement in ember_requirements:
        if not any(spec.operator in _UPPER_BOUNDS for spec in requirement.specifier):
            problems.append(f"it requires {requirement}, with no upper bound: a future ember "
                            f"may change the contract; declare a range such as {example!r}")
        if not requirement.specifier.contains(ember.__version__, prereleases=True):
            problems.append(f"it requires {requirement}, which excludes this ember "
                            f"{ember.__version__}")
    return [f"{owner.where}: {p}" for p in problems]


def _example_range() -> str:
    major, minor = (int(p) for p in ember.__version__.split(".")[:2])
    return f"ember>={major}.{minor},<{major}.{minor + 1}" if major == 0 else \
        f"ember>={major}.{minor},<{major + 1}"


def metrics_problems(device_name: str) -> list[str]:
    """What ``supported_metrics`` answers for the device itself, checked against the contract."""
    device_name = resolve_device(device_name)
    owner = owner_of(device_name)
    metrics = owner.call("supported_metrics", device_name=device_name)
    if not isinstance(metrics, Mapping):
        return [f"{owner.where}: supported_metrics({device_name!r}) returned {metrics!r}, not a "
                "mapping of property names to values"]
    problems = []
    for key in (props.FULL_DEVICE_NAME, props.DEVICE_ARCHITECTURE):
        if not isinstance(metrics.get(key), str) or not metrics[key].strip():
            problems.append(f"report {key} as a non-empty string (got {metrics.get(key)!r})")
    for key in (props.OPTIMIZATION_CAPABILITIES, props.SUPPORTED_CONFIG_KEYS,
                props.CACHING_PROPERTIES):
        if key not in metrics:
            problems.append(f"report {key}, even when it is empty")
    capabilities = metrics.get(props.OPTIMIZATION_CAPABILITIES, [])
    if not isinstance(capabilities, list | tuple):
        problems.append(f"OPTIMIZATION_CAPABILITIES must be a list of strings: {capabilities!r}")
        capabilities = []
    for capability in capabilities:
        if capability not in props.KNOWN_CAPABILITIES:
            problems.append(f"OPTIMIZATION_CAPABILITIES lists {capability!r}, which is not a known "
                            f"capability: use one of {sorted(props.KNOWN_CAPABILITIES)} "
                            "(ember.properties.KNOWN_CAPABILITIES)")
    for needs_export in (props.ENCRYPTION, props.WEIGHTLESS_CACHE):
        if needs_export in capabilities and props.EXPORT_IMPORT not in capabilities:
            problems.append(f"{needs_export} is about exported blobs: it needs EXPORT_IMPORT")
    if props.EXPORT_IMPORT in capabilities:
        problems += [f"it lists EXPORT_IMPORT: implement the {hook} hook"
                     for hook in ("export_model", "import_model") if not owner.implements(hook)]
    defaults = metrics.get(props.SUPPORTED_CONFIG_KEYS, {})
    if not isinstance(defaults, Mapping):
        problems.append("SUPPORTED_CONFIG_KEYS must map each writable key to its default")
        defaults = {}
    for key in defaults:
        if key in _CORE_KEYS:
            problems.append(f"config key {key} is the core's own; drop it from "
                            "SUPPORTED_CONFIG_KEYS")
    for key in [*metrics, *defaults]:
        if not isinstance(key, str) or key != key.upper() or not key:
            problems.append(f"property name {key!r} must be an upper-case string")
    caching = metrics.get(props.CACHING_PROPERTIES, [])
    for key in caching if isinstance(caching, list | tuple) else [caching]:
        if key not in metrics and key not in defaults:
            problems.append(f"CACHING_PROPERTIES lists {key!r}, which is neither a metric nor a "
                            "config key of the device")
    operators = metrics.get(SUPPORTED_OPERATORS, [])
    if not isinstance(operators, list | tuple | frozenset | set) or not all(
            isinstance(op, str) and op for op in operators):
        problems.append(f"{SUPPORTED_OPERATORS} must list operator types as strings")
    return [f"{owner.where}: {p}" for p in problems]


def property_problems(core: ember.Core, device_name: str) -> list[str]:
    """``SUPPORTED_PROPERTIES`` lists exactly what ``get_property`` answers, and the lists agree."""
    problems = []
    supported = core.get_property(device_name, props.SUPPORTED_PROPERTIES)
    if len(set(supported)) != len(supported):
        problems.append(f"SUPPORTED_PROPERTIES has duplicates: {supported}")
    for key in supported:
        try:
            core.get_property(device_name, key)
        except EmberError as exc:
            problems.append(f"SUPPORTED_PROPERTIES lists {key} but get_property raises {exc}")
    for listing in (props.SUPPORTED_METRICS, props.SUPPORTED_CONFIG_KEYS):
        missing = set(core.get_property(device_name, listing)) - set(supported)
        if missing:
            problems.append(f"{listing} has {sorted(missing)}, absent from SUPPORTED_PROPERTIES")
    for key in (props.FULL_DEVICE_NAME, props.DEVICE_ARCHITECTURE,
                props.OPTIMIZATION_CAPABILITIES, props.IMPORT_EXPORT_SUPPORT, *_CORE_KEYS[:2]):
        if key not in supported:
            problems.append(f"SUPPORTED_PROPERTIES lacks {key}")
    try:
        core.get_property(device_name, "EMBER_CONFORMANCE_NO_SUCH_PROPERTY")
        problems.append("get_property answered a property that is not in SUPPORTED_PROPERTIES")
    except UnknownPropertyError:
        pass
    capabilities = core.get_property(device_name, props.OPTIMIZATION_CAPABILITIES)
    if core.get_property(device_name, props.IMPORT_EXPORT_SUPPORT) != (
            props.EXPORT_IMPORT in capabilities):
        problems.append("IMPORT_EXPORT_SUPPORT disagrees with OPTIMIZATION_CAPABILITIES")
    return [f"device {device_name}: {p}" for p in problems]


def claimed_operators(core: ember.Core, device_name: str) -> frozenset[str] | None:
    """The operators a device says it runs (its ``SUPPORTED_OPERATORS`` metric), or None."""
    supported = core.get_property(device_name, props.SUPPORTED_PROPERTIES)
    if SUPPORTED_OPERATORS not in supported:
        return None
    return frozenset(core.get_property(device_name, SUPPORTED_OPERATORS))
