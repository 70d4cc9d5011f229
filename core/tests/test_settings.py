"""ember.runtime.settings: where a core key's value comes from, and which values a core key accepts.

Each check is tried both ways, a value it must accept and one it must refuse, so that a check
turned off or turned around fails a test (mutation testing found both kinds surviving)."""

import pytest

from ember import properties as props
from ember.common.sizes import parse_size
from ember.errors import PropertyValueError, UnknownPropertyError
from ember.runtime.settings import Settings, environment_signing_key

ENVIRONMENT_KEYS = ("EMBER_CACHE_DIR", "EMBER_CACHE_MAX_SIZE", "EMBER_CACHE_MODE",
                    "EMBER_CACHE_REMOTE", "EMBER_CACHE_SIGNING_KEY")


@pytest.fixture
def settings(monkeypatch):
    for name in ENVIRONMENT_KEYS:
        monkeypatch.delenv(name, raising=False)
    return Settings()


@pytest.mark.parametrize(("key", "value"), [
    (props.CACHE_DIR, "/tmp/ember-cache"), (props.CACHE_MAX_SIZE, "500M"),
    (props.CACHE_MAX_SIZE, 0), (props.CACHE_MAX_SIZE, None), (props.CACHE_MODE, "OPTIMIZE_SIZE"),
    (props.CACHE_REMOTE, "redis://127.0.0.1:6379/0"), (props.CACHE_SIGNING_KEY, "secret"),
    (props.CACHE_SIGNING_KEY, b"secret"),
])
def test_a_valid_core_value_is_accepted(settings, key, value):
    settings.set_global({key: value}, devices=[])
    assert settings.core_value(None, key) == value


@pytest.mark.parametrize(("key", "value", "message"), [
    (props.CACHE_DIR, 3, "CACHE_DIR must be a path"),
    (props.CACHE_MAX_SIZE, "lots", "CACHE_MAX_SIZE must be a number of bytes"),
    (props.CACHE_MAX_SIZE, -1, "CACHE_MAX_SIZE must be a number of bytes"),
    (props.CACHE_MODE, "FAST", "CACHE_MODE must be one of"),
    (props.CACHE_REMOTE, b"redis://127.0.0.1", "CACHE_REMOTE must be a redis:// URL"),
    (props.CACHE_SIGNING_KEY, 1234, "CACHE_SIGNING_KEY must be str or bytes"),
    (props.CACHE_SIGNING_KEY, "", "CACHE_SIGNING_KEY is empty"),
    (props.CACHE_SIGNING_KEY, b"", "CACHE_SIGNING_KEY is empty"),
])
def test_a_bad_core_value_is_refused_and_not_kept(settings, key, value, message):
    with pytest.raises(PropertyValueError, match=message):
        settings.set_global({key: value}, devices=[])
    assert settings.global_config == {}


def test_an_unknown_global_key_is_refused(settings):
    with pytest.raises(UnknownPropertyError, match="NO_SUCH_KEY"):
        settings.set_global({"NO_SUCH_KEY": 1}, devices=[])
    assert settings.global_config == {}


def test_the_environment_is_read_below_what_is_set(settings, monkeypatch):
    assert settings.core_value(None, props.CACHE_DIR) is None
    monkeypatch.setenv("EMBER_CACHE_DIR", "/from/environment")
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", "environment-secret")
    assert settings.core_value(None, props.CACHE_DIR) == "/from/environment"
    assert settings.core_value(None, props.CACHE_SIGNING_KEY) == "environment-secret"
    settings.set_global({props.CACHE_DIR: "/set"}, devices=[])
    assert settings.core_value(None, props.CACHE_DIR) == "/set"
    assert settings.core_value(None, props.CACHE_DIR, call={props.CACHE_DIR: ""}) == ""
    monkeypatch.setenv("EMBER_CACHE_MAX_SIZE", "")  # set but empty reads as unset
    assert settings.core_value(None, props.CACHE_MAX_SIZE) is None


def test_an_empty_signing_key_in_the_environment_is_refused(settings, monkeypatch):
    assert environment_signing_key() is None
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", "s3cret")
    assert environment_signing_key() == "s3cret"
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", "")
    with pytest.raises(PropertyValueError, match="EMBER_CACHE_SIGNING_KEY is set but empty"):
        environment_signing_key()
    with pytest.raises(PropertyValueError, match="set but empty"):
        settings.core_value(None, props.CACHE_SIGNING_KEY)
    assert settings.core_value(None, props.CACHE_DIR) is None  # the other keys do not check it


@pytest.mark.parametrize(("text", "size"), [("0", 0), ("0K", 0), ("0.5", 0), ("0.9K", 921)])
def test_sizes_below_one_unit_are_sizes(text, size):
    assert parse_size(text) == size


def device(capabilities):
    from ember.contract.device import DeviceDescription

    return DeviceDescription(name="TEST.0", full_name="a test device", architecture="test",
                             capabilities=capabilities, config_defaults={"LEVEL": 1},
                             caching_properties=("LEVEL",), metrics={})


@pytest.mark.parametrize(("capabilities", "passed"), [((props.ENCRYPTION,), True), ((), False)])
def test_encryption_callbacks_reach_only_a_device_that_encrypts(settings, capabilities, passed):
    def same(data):
        return data

    values = settings.device_values(device(capabilities),
                                    call={props.CACHE_ENCRYPTION_CALLBACKS: (same, same)})
    assert (props.CACHE_ENCRYPTION_CALLBACKS in values) is passed
    assert values["LEVEL"] == 1
