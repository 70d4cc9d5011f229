"""Where a property's value comes from: the one place that decides precedence.

For a compile on a device, the value of a writable property is the first of

1. the ``config`` given to that ``compile_model`` / ``import_model`` call,
2. ``core.set_property(device, {...})`` for that device (by full name: GPU.0 and GPU.1 differ),
3. ``core.set_property({...})`` for every device,
4. for the core's own keys, an environment variable (``EMBER_CACHE_DIR``,
   ``EMBER_CACHE_MAX_SIZE``), so that an application can be sped up without a code change,
5. the device's default (``SUPPORTED_CONFIG_KEYS``), or "unset" for the core's keys.

An empty ``CACHE_DIR`` at a higher level switches caching off even when a lower level sets it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ember import properties as props
from ember.common.log import get_logger
from ember.contract.device import DeviceDescription
from ember.contract.hints import normalize, normalize_value
from ember.errors import PropertyValueError, UnknownPropertyError

log = get_logger("ember")

#: Environment variables read for the core's keys, at the lowest precedence but the default.
ENVIRONMENT = {
    props.CACHE_DIR: "EMBER_CACHE_DIR",
    props.CACHE_MAX_SIZE: "EMBER_CACHE_MAX_SIZE",
    props.CACHE_MODE: "EMBER_CACHE_MODE",
    props.CACHE_REMOTE: "EMBER_CACHE_REMOTE",
    props.CACHE_SIGNING_KEY: "EMBER_CACHE_SIGNING_KEY",
}

#: Keys a compile call accepts besides the device's and the core's writable ones.
CALL_ONLY_KEYS = (props.CACHE_ENCRYPTION_CALLBACKS,)


class Settings:
    """Properties set on a Core, globally and per device."""

    def __init__(self) -> None:
        self.global_config: dict[str, Any] = {}
        self.device_config: dict[str, dict[str, Any]] = {}

    def set_global(self, properties: Mapping[str, Any], devices: list[DeviceDescription]) -> None:
        for key, value in properties.items():
            if key not in props.CORE_CONFIG_KEYS and not any(
                key in d.config_defaults for d in devices
            ):
                known = {*props.CORE_CONFIG_KEYS, *(k for d in devices for k in d.config_defaults)}
                raise UnknownPropertyError(key, "the core or any available device", sorted(known))
            _check_core_value(key, value)
        self.global_config.update(properties)

    def set_device(self, device: DeviceDescription, properties: Mapping[str, Any]) -> None:
        check_writable(device, properties, where=f"device {device.name}")
        self.device_config.setdefault(device.name, {}).update(properties)

    def device_values(self, device: DeviceDescription,
                      call: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The device's own writable properties after precedence (what its plugin receives),
        plus ``CACHE_ENCRYPTION_CALLBACKS`` when the call gave them."""
        defaults = device.config_defaults
        given = {k: v for k, v in self.global_config.items() if k in defaults}
        given.update({k: v for k, v in self.device_config.get(device.name, {}).items()
                      if k in defaults})
        callbacks = None
        if call:
            check_writable(device, call, where=f"compile on {device.name}", extra=CALL_ONLY_KEYS)
            given.update({k: v for k, v in call.items() if k in defaults})
            callbacks = call.get(props.CACHE_ENCRYPTION_CALLBACKS)
        # What was given in OpenVINO's spellings ("2", Type.f32) is normalised; the plugin's own
        # defaults are passed as it declared them (and a start that sets only core keys, such as
        # CACHE_DIR, normalises nothing).
        values = {**defaults, **normalize(given, defaults)} if given else dict(defaults)
        if callbacks is not None:
            from ember.crypto import as_callbacks  # only when a call gives them

            callbacks = as_callbacks(callbacks)
            if props.ENCRYPTION in device.capabilities:
                values[props.CACHE_ENCRYPTION_CALLBACKS] = callbacks
            else:  # as in OpenVINO: ignored by devices that cannot encrypt
                log.debug("%s does not support CACHE_ENCRYPTION_CALLBACKS; ignored", device.name)
        return values

    def core_value(self, device: DeviceDescription | None, key: str,
                   call: Mapping[str, Any] | None = None) -> Any:
        """A core key (CACHE_DIR, CACHE_MAX_SIZE) for a device, or None when unset everywhere."""
        for level in (call or {}, self.device_config.get(device.name, {}) if device else {},
                      self.global_config):
            if key in level:
                return level[key]
        if key == props.CACHE_SIGNING_KEY:
            return environment_signing_key()
        return os.environ.get(ENVIRONMENT[key]) or None


def environment_signing_key() -> str | None:
    """``$EMBER_CACHE_SIGNING_KEY``, or None when unset.

    :raises PropertyValueError: when it is set but empty: an empty key would sign nothing, and
        a cache meant to be signed would silently accept anyone's entries.
    """
    name = ENVIRONMENT[props.CACHE_SIGNING_KEY]
    value = os.environ.get(name)
    if value is not None and not value:
        raise PropertyValueError(f"{name} is set but empty: an empty signing key signs nothing; "
                                 f"set it to a secret, or unset it")
    return value


def check_writable(device: DeviceDescription, keys: Mapping[str, Any], where: str,
                   extra: tuple[str, ...] = ()) -> None:
    writable = {*device.config_defaults, *props.CORE_CONFIG_KEYS, *extra}
    read_only = device.read_only_properties()
    for key, value in keys.items():
        if key in read_only and key not in writable:
            raise PropertyValueError(f"{key} is a read-only property of {device.name}")
        if key not in writable:
            raise UnknownPropertyError(key, where, sorted(writable))
        _check_core_value(key, value)
        normalize_value(key, value, device.config_defaults.get(key))  # raises for a bad hint


def _check_core_value(key: str, value: Any) -> None:
    if key == props.CACHE_DIR and not isinstance(value, str | os.PathLike):
        raise PropertyValueError(f"CACHE_DIR must be a path, not {value!r}")
    if key == props.CACHE_MODE and value not in props.CACHE_MODES:
        raise PropertyValueError(f"CACHE_MODE must be one of {props.CACHE_MODES}, not {value!r}")
    if key == props.CACHE_REMOTE and not isinstance(value, str):
        raise PropertyValueError(f"CACHE_REMOTE must be a redis:// URL, not {value!r}")
    if key == props.CACHE_SIGNING_KEY and not isinstance(value, str | bytes):
        raise PropertyValueError("CACHE_SIGNING_KEY must be str or bytes")
    if key == props.CACHE_SIGNING_KEY and not value:
        raise PropertyValueError("CACHE_SIGNING_KEY is empty: an empty signing key signs "
                                 "nothing; set it to a secret, or leave it unset")
    if key == props.CACHE_MAX_SIZE and value is not None:
        from ember.common.sizes import parse_size  # here: most caches set no limit

        if parse_size(value) is None:
            raise PropertyValueError(f"CACHE_MAX_SIZE must be a number of bytes, not {value!r}")
