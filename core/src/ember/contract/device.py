"""What a plugin hands back to the core: a model compiled for one device.

The core wraps it in :class:`ember.CompiledModel`, which checks inputs, names outputs and talks to
the cache; the plugin's object only has to run. Keeping this protocol small is what makes a device
plugin a few hundred lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ember import properties as props
from ember.contract.hints import with_generic_defaults
from ember.errors import PluginError

if TYPE_CHECKING:
    import numpy as np

    from ember.model.port import Port


@runtime_checkable
class DeviceModel(Protocol):
    """A model compiled for one device, as returned by the ``compile`` and ``import_model`` hooks.

    ``inputs`` and ``outputs`` describe the ports in order. ``infer`` receives one array per input,
    in that order, already checked by the core against ``inputs`` (count, dtype, rank and fixed
    dims), and returns one array per output in order. It may be called from several threads, each
    through its own infer request; it must not keep references to the input arrays.

    Optionally, ``infer_feeds(feeds)`` is the same inference on a dict keyed by input name, for a
    device whose runtime takes named inputs (onnxruntime does): the core calls it, instead of
    ``infer``, when the caller passed such a dict whose arrays it has checked, so that neither
    side builds another. It must not keep or change the dict.

    Optionally, ``runtime_properties`` (a mapping) gives read-only properties of the compiled
    model that depend on how it runs, such as ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` and the
    resolved ``NUM_STREAMS`` (see :mod:`ember.contract.hints`).
    """

    inputs: Sequence[Port]
    outputs: Sequence[Port]

    def infer(self, inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """Run one inference: one array per input, in the order of ``inputs``, already checked by
        the core; returns one array per output, in the order of ``outputs``."""
        ...


#: OpenVINO's virtual devices: AUTO is Ember's (ember.runtime.auto); the others are refused by name.
AUTO = "AUTO"
NOT_OFFERED = ("MULTI", "HETERO", "BATCH")


def is_virtual(device_name: str | None) -> bool:
    """Whether a device name is AUTO's or another of OpenVINO's virtual devices."""
    return bool(device_name) and str(device_name).partition(":")[0] in (AUTO, *NOT_OFFERED)


def split_device_name(device_name: str) -> tuple[str, int | None]:
    """A device name's kind and index: ``"GPU.1"`` -> ``("GPU", 1)``; ``"CPU"`` -> ``("CPU",
    None)``; a device named within its kind, ``"OPENVINO.GPU"`` -> ``("OPENVINO", None)`` (the
    kind is what chooses the plugin; the whole name is the device)."""
    base, dot, rest = device_name.partition(".")
    if dot and rest.isdigit():
        return base, int(rest)
    if dot and base and rest:
        return base, None
    return device_name, None


def one_name_per_device(core: Any, names: Sequence[str]) -> list[str]:
    """``names`` without those that describe a device already named: the same kind, full name
    and architecture (``OPENVINO.CPU`` is OpenVINO's CPU, as ``OPENVINO`` is). Measuring or
    testing one device under two names only costs time. ``core``: an :class:`ember.Core`."""
    seen, kept = set(), []
    for name in names:
        described = (split_device_name(name)[0], core.get_property(name, props.FULL_DEVICE_NAME),
                     core.get_property(name, props.DEVICE_ARCHITECTURE))
        if described not in seen:
            seen.add(described)
            kept.append(name)
    return kept


class DeviceDescription:
    """A device's answer to ``supported_metrics``, checked once and kept by the core.

    A plain class, not a dataclass: defining a dataclass generates and compiles code at import,
    which every start would pay.
    """

    def __init__(self, *, name: str, full_name: str, architecture: str,
                 capabilities: tuple[str, ...], config_defaults: Mapping[str, Any],
                 caching_properties: tuple[str, ...], metrics: Mapping[str, Any]) -> None:
        self.name = name
        self.full_name = full_name
        self.architecture = architecture
        self.capabilities = capabilities
        self.config_defaults = config_defaults
        self.caching_properties = caching_properties
        self.metrics = metrics  # everything the plugin reported, as reported

    def __repr__(self) -> str:
        return f"DeviceDescription(name={self.name!r}, full_name={self.full_name!r})"

    @classmethod
    def from_metrics(cls, device_name: str, metrics: Mapping[str, Any] | None) -> DeviceDescription:
        """The description of ``device_name`` from what its plugin's ``supported_metrics`` hook
        returned.

        :raises PluginError: when ``metrics`` is not a mapping, lacks ``FULL_DEVICE_NAME``,
            ``DEVICE_ARCHITECTURE`` or ``OPTIMIZATION_CAPABILITIES``, or gives
            ``SUPPORTED_CONFIG_KEYS`` as anything but a mapping of each key to its default.
        """
        if not isinstance(metrics, Mapping):
            raise PluginError(f"supported_metrics for {device_name} returned {metrics!r}")
        missing = [k for k in _REQUIRED_METRICS if k not in metrics]
        if missing:
            raise PluginError(f"supported_metrics for {device_name} lacks {', '.join(missing)}")
        defaults = metrics.get(props.SUPPORTED_CONFIG_KEYS, {})
        if not isinstance(defaults, Mapping):
            raise PluginError(
                f"{props.SUPPORTED_CONFIG_KEYS} of {device_name} must map each key to its default"
            )
        return cls(
            name=device_name,
            full_name=str(metrics[props.FULL_DEVICE_NAME]),
            architecture=str(metrics[props.DEVICE_ARCHITECTURE]),
            capabilities=tuple(metrics[props.OPTIMIZATION_CAPABILITIES]),
            config_defaults=with_generic_defaults(defaults),  # + OpenVINO's hint keys
            caching_properties=tuple(metrics.get(props.CACHING_PROPERTIES, ())),
            metrics=dict(metrics),
        )

    @property
    def can_export(self) -> bool:
        """Whether the device can export and import compiled models (``EXPORT_IMPORT`` among its
        capabilities): what the model cache needs."""
        return props.EXPORT_IMPORT in self.capabilities

    @cached_property
    def _read_only_properties(self) -> dict[str, Any]:
        return self._derive_read_only_properties()

    def read_only_properties(self) -> dict[str, Any]:
        """Every metric the device answers, including those the core derives."""
        return dict(self._read_only_properties)

    def _derive_read_only_properties(self) -> dict[str, Any]:
        values = {k: v for k, v in self.metrics.items() if k != props.SUPPORTED_CONFIG_KEYS}
        values[props.OPTIMIZATION_CAPABILITIES] = list(self.capabilities)
        values[props.CACHING_PROPERTIES] = list(self.caching_properties)
        values[props.IMPORT_EXPORT_SUPPORT] = self.can_export
        values[props.SUPPORTED_CONFIG_KEYS] = [*self.config_defaults, *props.CORE_CONFIG_KEYS]
        metric_names = sorted({*values, props.SUPPORTED_METRICS, props.SUPPORTED_PROPERTIES})
        values[props.SUPPORTED_METRICS] = metric_names
        values[props.SUPPORTED_PROPERTIES] = sorted(
            {*metric_names, *values[props.SUPPORTED_CONFIG_KEYS]}
        )
        return values


_REQUIRED_METRICS = (
    props.FULL_DEVICE_NAME,
    props.DEVICE_ARCHITECTURE,
    props.OPTIMIZATION_CAPABILITIES,
)
