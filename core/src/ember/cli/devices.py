"""``ember devices``: every device, the plugin behind it, and the plugins that failed to load."""

from __future__ import annotations

from typing import Any

import click

from ember import properties as props
from ember.cli._common import describe_error, echo_json, json_option, row, say, show, table
from ember.contract.plugin_manager import PluginInfo
from ember.runtime.core import Core


def describe_device(core: Core, name: str, plugins: dict[str, PluginInfo]) -> dict[str, Any]:
    """What ``ember devices`` says about one device; ``error`` when the plugin fails to answer."""
    try:
        label = core.get_versions(name)[name]
        info = plugins.get(label, PluginInfo(label))
        return {
            "name": name,
            "full_name": core.get_property(name, props.FULL_DEVICE_NAME),
            "architecture": core.get_property(name, props.DEVICE_ARCHITECTURE),
            "capabilities": list(core.get_property(name, props.OPTIMIZATION_CAPABILITIES)),
            "import_export": bool(core.get_property(name, props.IMPORT_EXPORT_SUPPORT)),
            "plugin": {"name": info.name, "distribution": info.distribution,
                       "version": info.version},
        }
    except Exception as error:  # a plugin may raise anything; the others are still listed
        return {"name": name, "error": describe_error(error)}


@click.command()
@json_option
def devices(as_json: bool) -> None:
    """List the available devices (full name, architecture, capabilities, plugin distribution
    and version), the loaded plugins, and the plugins that failed to load, with why."""
    core = Core()
    names = core.available_devices  # loads every plugin
    plugins = {str(info): info for info in core.loaded_plugins}
    found = [describe_device(core, name, plugins) for name in names]
    loaded = []
    for info in core.loaded_plugins:
        names = [d["name"] for d in found if d.get("plugin", {}).get("name") == info.name]
        loaded.append({"name": info.name, "distribution": info.distribution,
                       "version": info.version, "devices": names, "notes": list(info.notes)})
    failures = [{"name": f.name, "distribution": f.distribution, "stage": f.stage,
                 "error": f.error} for f in core.plugin_failures]
    if as_json:
        echo_json({"devices": found, "plugins": loaded, "failures": failures})
        return
    listing = table("device", "full name", "architecture", "capabilities", "plugin")
    for device in found:
        if "error" in device:
            row(listing, device["name"], f"error: {device['error']}", "", "", "")
            continue
        plugin = device["plugin"]
        row(listing, device["name"], device["full_name"], device["architecture"],
            " ".join(device["capabilities"]),
            f"{plugin['distribution'] or plugin['name']} {plugin['version'] or ''}".strip())
    if found:
        show(listing)
    else:
        say("no device is available: install a device plugin (ember-cpu, ember-template, ...)")
    failed = {failure["name"] for failure in failures}
    for plugin in loaded:
        provides = ", ".join(plugin["devices"]) or (
            "no device (it failed, see below)" if plugin["name"] in failed
            else "no device found on this machine")
        label = f"{plugin['distribution'] or plugin['name']} {plugin['version'] or ''}".strip()
        say(f"plugin {label} (entry point {plugin['name']!r}): {provides}")
        for note in plugin["notes"]:
            say(f"  note for its author: {note}", style="yellow")
    for failure in core.plugin_failures:
        say(f"not loaded: {failure}", style="red")
