"""Device aliases: a name an application asks for, served by another device.

``EMBER_DEVICE_ALIASES="CPU=OPENVINO"`` makes ``compile_model(model, "CPU")`` (and every other use
of the name ``CPU``: properties, the default device, the model cache) run on ``OPENVINO``, so an
unchanged application moves to another engine by configuration alone. Entries are
``NAME=TARGET`` pairs, comma-separated; names are compared in upper case, as device names are
written. A target may itself be an alias (a chain is followed); a cycle is an error. Without the
variable nothing changes.

What Ember reports stays true: ``available_devices`` lists an alias only while its target is
available, and every property read through an alias (``FULL_DEVICE_NAME``, a compiled model's
``EXECUTION_DEVICES``) is the serving device's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from ember.errors import DeviceAliasError

# The variable's name is the plugin manager's (it reads the variable on every start, this module
# only when aliases are set): the functions are told it, for their messages.


def parse_aliases(text: str, source: str) -> dict[str, str]:
    """``"CPU=OPENVINO, GPU=OPENVINO"`` -> ``{"CPU": "OPENVINO", "GPU": "OPENVINO"}``; ``source``
    names where the text came from (the environment variable), for the errors.

    :raises DeviceAliasError: an entry that is not ``NAME=TARGET``, or a name given twice.
    """
    aliases: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, target = (part.strip().upper() for part in item.partition("="))
        if not sep or not name or not target:
            raise DeviceAliasError(name or item.strip(), f"{source} entries are "
                                   f"NAME=TARGET pairs, not {item.strip()!r}")
        if name in aliases and aliases[name] != target:
            raise DeviceAliasError(name, f"{source} serves {name!r} with both "
                                   f"{aliases[name]!r} and {target!r}")
        aliases[name] = target
    return aliases


def alias_chain(aliases: Mapping[str, str], device_name: str, source: str) -> list[str]:
    """The names ``device_name`` is served through, itself first and the serving name last
    (``["CPU", "OPENVINO"]``; ``["GPU.0"]`` when it is no alias); ``source`` names where the
    aliases came from, for the error.

    :raises DeviceAliasError: the aliases form a cycle.
    """
    chain = [device_name]
    while (target := aliases.get(chain[-1])) is not None:
        if target in chain:
            cycle = " -> ".join([*chain[chain.index(target):], target])
            raise DeviceAliasError(device_name, f"{source} has a cycle: {cycle}")
        chain.append(target)
    return chain
