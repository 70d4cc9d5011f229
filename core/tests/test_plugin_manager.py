"""Loading plugins: registration, isolation of broken plugins, dispatch to the owning plugin."""

import pytest

import ember
from ember import hookimpl
from ember.errors import PluginError, UnknownDeviceError
from ember.testing.toy import ToyPlugin


@pytest.fixture
def core():
    return ember.Core(load_installed_plugins=False)


def test_registered_plugin_devices_are_listed(core):
    core.register_plugin(ToyPlugin(), "toy")
    assert core.available_devices == ["TOY.0", "TOY.1"]


def test_bare_name_means_the_first_indexed_device(core):
    core.register_plugin(ToyPlugin(), "toy")
    assert core.get_property("TOY", "FULL_DEVICE_NAME") == "toy device TOY.0"
    assert core.get_property("TOY.1", "FULL_DEVICE_NAME") == "toy device TOY.1"
    with pytest.raises(UnknownDeviceError):
        core.get_property("TOY.2", "FULL_DEVICE_NAME")


def test_unknown_hook_name_is_rejected_and_reported(core):
    class Typo:
        @hookimpl
        def compile_model(self, model):  # not a hook: check_pending must catch it
            return None

    with pytest.raises(PluginError, match="compile_model"):
        core.register_plugin(Typo(), "typo")
    assert [f.name for f in core.plugin_failures] == ["typo"]


def test_wrong_hook_arguments_are_rejected(core):
    class BadArgs:
        @hookimpl
        def compile(self, model, device, extra):
            return None

    class GoodArgs:  # the same hook with the spec's argument names registers
        @hookimpl
        def compile(self, model, device_name):
            return None

    with pytest.raises(PluginError, match=r"failed at register: .*hook 'compile'"):
        core.register_plugin(BadArgs(), "plugin_one")
    (failure,) = core.plugin_failures
    assert (failure.name, failure.stage) == ("plugin_one", "register")
    core.register_plugin(GoodArgs(), "plugin_two")
    assert [f.name for f in core.plugin_failures] == ["plugin_one"]


def test_plugin_raising_in_list_devices_does_not_hide_others(core):
    class Broken:
        @hookimpl
        def list_devices(self):
            raise RuntimeError("driver exploded")

    core.register_plugin(ToyPlugin(), "toy")
    core.register_plugin(Broken(), "broken")
    assert core.available_devices == ["TOY.0", "TOY.1"]
    (failure,) = core.plugin_failures
    assert failure.name == "broken" and failure.stage == "list_devices"
    assert "driver exploded" in str(failure)


def test_device_claimed_twice_keeps_the_first(core):
    core.register_plugin(ToyPlugin(count=1), "first")
    core.register_plugin(ToyPlugin(count=2), "second")
    assert core.available_devices == ["TOY.0", "TOY.1"]
    assert core.get_versions("TOY.0") == {"TOY.0": "first"}
    assert core.get_versions("TOY.1") == {"TOY.1": "second"}
    (failure,) = core.plugin_failures
    assert failure.name == "second" and "already provided by plugin 'first'" in str(failure)


def test_dispatch_asks_only_the_owner():
    calls = []

    class Greedy(ToyPlugin):
        @hookimpl
        def compile(self, model, device_name, config):
            calls.append(device_name)  # a buggy plugin that would claim every device
            return super().compile(model, device_name, config)

    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(ToyPlugin("A", 1), "a")
    core.register_plugin(Greedy("B", 1), "b")
    from ember.testing.toy import identity_model_bytes
    core.compile_model(identity_model_bytes(), "A.0")
    assert calls == []


def test_installed_plugins_load_and_can_be_disabled(monkeypatch):
    assert "TEMPLATE" in ember.Core().available_devices
    monkeypatch.setenv("EMBER_DISABLE_PLUGINS", "template, ember-cpu")
    devices = ember.Core().available_devices
    assert "TEMPLATE" not in devices and "CPU" not in devices


def test_each_core_has_its_own_plugin_manager():
    first = ember.Core(load_installed_plugins=False)
    second = ember.Core(load_installed_plugins=False)
    first.register_plugin(ToyPlugin(), "toy")
    assert second.available_devices == []


def test_plugin_for_another_contract_version_is_refused(core):
    class FromTheFuture(ToyPlugin):
        EMBER_CONTRACT_VERSION = 99

    with pytest.raises(PluginError, match=r"contract 99.*speaks contract 1"):
        core.register_plugin(FromTheFuture("NEW", 1), "future")
    assert core.available_devices == []


def test_shipped_plugins_declare_their_contract_version():
    from ember.contract import hookspecs

    for module in ("ember_cpu.plugin", "ember_gpu.plugin", "ember_openvino.plugin",
                   "ember_template.plugin"):
        plugin = __import__(module, fromlist=["EMBER_CONTRACT_VERSION"])
        assert plugin.EMBER_CONTRACT_VERSION == hookspecs.CONTRACT_VERSION


def test_a_plugin_explains_why_its_device_is_absent(core):
    class NoDriver:
        @hookimpl
        def list_devices(self):
            return []

        @hookimpl
        def explain_absence(self, device_kind):
            return "no NPU driver found; install npu-runtime" if device_kind == "NPU" else None

    class Raising:
        @hookimpl
        def explain_absence(self, device_kind):
            raise RuntimeError("a hint must not become a second error")

    core.register_plugin(NoDriver(), "npu")
    core.register_plugin(Raising(), "raising")
    with pytest.raises(UnknownDeviceError, match="no NPU driver found; install npu-runtime"):
        core.get_property("NPU", "FULL_DEVICE_NAME")


def test_an_import_error_names_the_plugins_file_wherever_it_is_installed():
    """A plugin installed without a virtual environment lives under the standard library's
    directory (``.../lib/python3.X/site-packages``): its frames are still the plugin's."""
    import os

    from ember.contract import plugin_manager

    stdlib = os.path.dirname(os.__file__)
    site = os.path.join(stdlib, "site-packages", "ember_acme", "plugin.py")
    assert plugin_manager._in_plugin(site)
    assert not plugin_manager._in_plugin(os.path.join(stdlib, "importlib", "__init__.py"))
    assert not plugin_manager._in_plugin(plugin_manager.__file__)
    assert not plugin_manager._in_plugin("<frozen importlib._bootstrap>")
    code = compile("x = 1\nraise ImportError('no backend')\n", site, "exec")
    try:
        exec(code, {})
    except ImportError as exc:
        assert plugin_manager._describe(exc).endswith(f"({site}, line 2)")
