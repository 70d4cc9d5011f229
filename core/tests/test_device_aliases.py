"""EMBER_DEVICE_ALIASES: a device name an application asks for, served by another device, with
the real plugins installed by make install (CPU is ember-cpu, TEMPLATE ember-template)."""

import numpy as np
import pytest

import ember
from ember.errors import DeviceAliasError, UnknownDeviceError
from ember.testing import mlp, random_inputs, reference_outputs


@pytest.fixture
def model():
    return mlp().SerializeToString()


def core_with(monkeypatch, aliases):
    monkeypatch.setenv("EMBER_DEVICE_ALIASES", aliases)
    return ember.Core()


def test_without_the_setting_cpu_is_ember_cpu(monkeypatch, model):
    monkeypatch.delenv("EMBER_DEVICE_ALIASES", raising=False)
    core = ember.Core()
    assert str(core.get_versions("CPU")["CPU"]).startswith("ember-cpu")
    assert core.compile_model(model, "CPU").get_property("EXECUTION_DEVICES") == ["CPU"]


@pytest.mark.parametrize("setting",
                         ["CPU=TEMPLATE", " cpu = template ", "CPU=MIDDLE,MIDDLE=TEMPLATE"])
def test_an_unchanged_application_asking_for_cpu_runs_on_the_target(monkeypatch, model, setting):
    core = core_with(monkeypatch, setting)
    compiled = core.compile_model(model, "CPU")
    assert compiled.get_property("EXECUTION_DEVICES") == ["TEMPLATE"]
    inputs = random_inputs(compiled.inputs)
    np.testing.assert_allclose(compiled(inputs)[0], reference_outputs(mlp(), inputs)[0],
                               rtol=1e-5, atol=1e-6)
    # what Ember reports about "CPU" is the serving device's own
    assert core.get_property("CPU", "FULL_DEVICE_NAME") == core.get_property(
        "TEMPLATE", "FULL_DEVICE_NAME")
    assert str(core.get_versions("CPU")["TEMPLATE"]).startswith("ember-template")
    assert "CPU" in core.available_devices


def test_an_alias_to_an_absent_device_is_refused_by_name(monkeypatch, model):
    core = core_with(monkeypatch, "CPU=NO_SUCH_DEVICE")
    with pytest.raises(DeviceAliasError) as error:
        core.compile_model(model, "CPU")
    assert isinstance(error.value, UnknownDeviceError)
    message = str(error.value)
    assert "EMBER_DEVICE_ALIASES" in message and "'NO_SUCH_DEVICE'" in message
    assert "CPU" not in core.available_devices  # an alias is listed only while it can serve
    assert "TEMPLATE" in core.available_devices


def test_a_cycle_is_refused(monkeypatch, model):
    core = core_with(monkeypatch, "CPU=TEMPLATE,TEMPLATE=CPU")
    with pytest.raises(DeviceAliasError, match="cycle: CPU -> TEMPLATE -> CPU"):
        core.compile_model(model, "CPU")


@pytest.mark.parametrize("setting", ["CPU", "CPU=", "=TEMPLATE", "CPU=TEMPLATE,CPU=GPU"])
def test_a_malformed_setting_is_refused_when_the_core_is_made(monkeypatch, setting):
    with pytest.raises(DeviceAliasError, match="EMBER_DEVICE_ALIASES"):
        core_with(monkeypatch, setting)


def test_names_that_are_no_alias_are_untouched(monkeypatch, model):
    core = core_with(monkeypatch, "GPU=TEMPLATE")
    assert core.compile_model(model, "CPU").get_property("EXECUTION_DEVICES") == ["CPU"]
