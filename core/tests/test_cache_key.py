"""The model cache's key: every part of it changes the digest, and every change that can make a
compiled result different (Ember, the plugin, the device's architecture, a caching property,
the payload's form) is a miss, never a wrong hit."""

import warnings

import numpy as np
import pytest

import ember
from ember.cache import key as cache_key
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.cache.key import entry_key, make_key
from ember.errors import EmberError
from ember.store import blob
from ember.testing.toy import ToyPlugin, identity_model_bytes

BASE = {
    "model_digest": "a" * 64,
    "device_kind": "CPU",
    "architecture": "x86_64-avx2",
    "plugin": "ember-cpu",
    "plugin_version": "1.0.0",
    "properties": {"LEVEL": 1, "MODE": "fast"},
    "flags": (),
}

#: One change to each input of make_key, each of which must give another digest.
CHANGES = [
    ("model_digest", "b" * 64),
    ("device_kind", "GPU"),
    ("architecture", "x86_64-avx512"),
    ("plugin", "ember-gpu"),
    ("plugin_version", "1.0.1"),
    ("properties", {"LEVEL": 2, "MODE": "fast"}),
    ("properties", {"LEVEL": 1, "MODE": "slow"}),
    ("properties", {"LEVEL": 1}),
    ("properties", {"LEVEL": 1, "MODE": "fast", "OTHER": None}),
    ("flags", ("encrypted",)),
    ("flags", ("weightless",)),
    ("flags", ("encrypted", "weightless")),
]


@pytest.mark.parametrize(("part", "value"), CHANGES,
                         ids=[f"{part}={value!r}" for part, value in CHANGES])
def test_every_input_of_the_key_changes_its_digest(part, value):
    base = make_key(**BASE)
    changed = make_key(**{**BASE, part: value})
    assert changed.digest != base.digest
    assert len(changed.digest) == 64
    # and the part travels in the key's parts, for explaining a miss
    assert changed.parts != base.parts


def test_the_key_does_not_depend_on_the_order_of_properties_or_flags():
    first = make_key(**{**BASE, "properties": {"A": 1, "B": 2}, "flags": ("x", "y")})
    second = make_key(**{**BASE, "properties": {"B": 2, "A": 1}, "flags": ("y", "x")})
    assert first.digest == second.digest


@pytest.mark.parametrize("version", ["ember_version", "container_version", "schema"])
def test_every_entry_depends_on_the_versions_it_was_written_with(monkeypatch, version):
    parts = {"model": "a" * 64}
    before = entry_key(parts)
    attribute = {"ember_version": (cache_key, "__version__", "999.0"),
                 "container_version": (cache_key.blob, "CONTAINER_VERSION", 99),
                 "schema": (cache_key, "KEY_SCHEMA", 99)}[version]
    monkeypatch.setattr(*attribute)
    after = entry_key(parts)
    assert after.parts[version] != before.parts[version]
    assert after.digest != before.digest


# -- end to end: what changes is a miss -----------------------------------------------------------


class ToyOnOtherHardware(ToyPlugin):
    """The toy device, on a machine whose architecture differs."""

    @ember.hookimpl
    def supported_metrics(self, device_name):
        metrics = super().supported_metrics(device_name)
        return metrics and {**metrics, "DEVICE_ARCHITECTURE": "toy-2"}


def toy(version="1.0", plugin_class=ToyPlugin):
    plugin = plugin_class("TOY", 1)
    plugin.__version__ = version
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(plugin, "toy")
    return core


def compile_toy(core, cache_dir, **config):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a change is a plain miss: nothing to warn about
        return core.compile_model(identity_model_bytes(), "TOY.0",
                                  {"CACHE_DIR": str(cache_dir), **config})


@pytest.fixture(autouse=True)
def admit_every_compile(monkeypatch):
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")


@pytest.mark.parametrize("change", ["plugin upgrade", "Ember upgrade", "other architecture",
                                    "caching property"])
def test_each_change_that_matters_is_a_miss(tmp_path, monkeypatch, change):
    cache_dir = tmp_path / "c"
    first = compile_toy(toy(), cache_dir)
    assert first.get_property("LOADED_FROM_CACHE") is False
    assert compile_toy(toy(), cache_dir).get_property("LOADED_FROM_CACHE") is True
    config = {}
    core = toy()
    if change == "plugin upgrade":
        core = toy(version="1.1")
    elif change == "Ember upgrade":
        monkeypatch.setattr(cache_key, "__version__", "999.0")
    elif change == "other architecture":
        core = toy(plugin_class=ToyOnOtherHardware)
    else:
        config = {"TOY_LEVEL": 2}
    changed = compile_toy(core, cache_dir, **config)
    assert changed.get_property("LOADED_FROM_CACHE") is False
    assert len(list((cache_dir / "blobs").glob("*.blob"))) == 2
    assert changed(np.zeros(2, np.float32))[0].tolist() == [1, 1]


def test_an_entry_records_what_it_was_made_with(tmp_path):
    cache_dir = tmp_path / "c"
    compile_toy(toy(version="1.2"), cache_dir, TOY_LEVEL=3)
    (path,) = (cache_dir / "blobs").glob("*.blob")
    header, payload = blob.unpack(path.read_bytes())
    assert bytes(payload) == b"add-one"
    assert (header.plugin, header.plugin_version, header.device,
            header.device_architecture) == ("toy", "1.2", "TOY.0", "toy-1")
    assert header.key == path.stem
    assert header.key_parts["properties"] == {"TOY_LEVEL": 3}
    assert header.key_parts["architecture"] == "toy-1"
    assert header.key_parts["plugin_version"] == "1.2"
    assert header.key_parts["ember_version"] == ember.__version__


# -- explaining a miss, and the values a key holds ------------------------------------------------


def test_a_miss_is_explained_by_the_parts_that_differ():
    wanted = make_key(**BASE).parts
    found = make_key(**{**BASE, "plugin_version": "0.9",
                        "properties": {"LEVEL": 2, "MODE": "fast"}}).parts
    assert cache_key.explain_difference(wanted, found) == (
        "plugin_version '0.9' cached, '1.0.0' now; property LEVEL 2 cached, 1 now")
    assert cache_key.explain_difference(wanted, wanted) == "no visible difference"
    # a header is untrusted: properties that are not an object read as none
    assert cache_key.explain_difference({"properties": {"A": 1}}, {"properties": [1]}) == (
        "property A None cached, 1 now")
    assert cache_key.explain_difference({"x": 1}, {}) == "x None cached, 1 now"
    # parts named after "properties" are compared too
    assert cache_key.explain_difference({"properties": {}, "zz": 1},
                                        {"properties": {}, "zz": 2}) == "zz 2 cached, 1 now"


def test_an_entry_key_does_not_depend_on_the_order_of_its_parts():
    assert entry_key({"a": 1, "b": [2]}).digest == entry_key({"b": [2], "a": 1}).digest
    assert entry_key({"a": 1}).digest != entry_key({"a": 2}).digest


def test_property_values_are_kept_as_json_and_anything_else_by_its_repr():
    class Hint:
        def __repr__(self):
            return "<hint>"

    key = make_key(**{**BASE, "properties": {
        "tuple": (1, "a"), "mapping": {1: (True, None)}, "float": 0.5, "other": Hint()}})
    assert key.parts["properties"] == {"float": 0.5, "mapping": {"1": [True, None]},
                                       "other": "<hint>", "tuple": [1, "a"]}
    assert key.model_digest == BASE["model_digest"]


def test_the_identity_of_a_model_from_bytes_a_model_or_a_path(tmp_path):
    from ember.cache.file_digest import FileDigests
    from ember.common import checksum

    data = identity_model_bytes()
    digests = FileDigests(str(tmp_path), str(tmp_path / "files"))
    assert cache_key.model_identity(data, digests) == (checksum.hexdigest(data), "model")
    folder = tmp_path / "store" / "resnet"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(data)
    (tmp_path / "plain.onnx").write_bytes(data)
    # a stored model is named after its folder, any other file after itself
    assert cache_key.model_identity(folder / "model.onnx", digests) == (
        checksum.hexdigest(data), "resnet")
    assert cache_key.model_identity(tmp_path / "plain.onnx", digests)[1] == "plain.onnx"
    model = ember.Core().read_model(data)
    assert cache_key.model_identity(model, digests)[0] == checksum.hexdigest(model.to_bytes())
    with pytest.raises(EmberError):
        cache_key.model_identity(tmp_path / "missing.onnx", digests)
