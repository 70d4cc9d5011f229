"""What stands between a cache entry and a wrong hit: the payload re-verified after any change to
the file, the header's key against the file's name (reads, `cache verify`, bundles), the blob's
origin at import, and recovery from whatever a plugin's import raises."""

import time
import warnings

import numpy as np
import pytest

import ember
from ember import cache as ember_cache
from ember.cache import local as store
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.cli.bundle import export_bundle
from ember.errors import BlobFormatError, CacheWarning, NotSupportedError, PluginWarning
from ember.store import blob
from ember.store.signing import Signer
from ember.testing.toy import ToyPlugin, identity_model_bytes


@pytest.fixture(autouse=True)
def admit_every_compile(monkeypatch):
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")


def toy_core(plugin=None):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(plugin or ToyPlugin("TOY", 1), "toy")
    return core


def compile_toy(core, cache_dir, **config):
    return core.compile_model(identity_model_bytes(), "TOY.0",
                              {"CACHE_DIR": str(cache_dir), **config})


def entries(cache_dir):
    return sorted((cache_dir / "blobs").glob("*.blob"))


def two_entries(cache_dir):
    """Two intact entries of one model (TOY_LEVEL 1 and 2): (first, second)."""
    core = toy_core()
    compile_toy(core, cache_dir)
    (first,) = entries(cache_dir)
    compile_toy(core, cache_dir, TOY_LEVEL=2)
    (second,) = set(entries(cache_dir)) - {first}
    return first, second


def test_a_file_changed_after_a_hit_is_verified_again_in_the_same_process(tmp_path,
                                                                           monkeypatch):
    # An entry verified once is not hashed again while its identity (inode, size, times)
    # stays the same; a change in place changes ctime, and must be caught. The racy window is
    # closed here so that the first hit remembers the entry as verified at once.
    monkeypatch.setattr(store, "RACY_SECONDS", -1.0)
    core = toy_core()
    compile_toy(core, tmp_path / "c")
    assert compile_toy(core, tmp_path / "c").get_property("LOADED_FROM_CACHE") is True
    (entry,) = entries(tmp_path / "c")
    time.sleep(0.05)  # past the file system's timestamp granularity
    with open(entry, "r+b") as rewritten:  # same inode, same size: one payload byte flipped
        rewritten.seek(-1, 2)
        last = rewritten.read(1)
        rewritten.seek(-1, 2)
        rewritten.write(bytes([last[0] ^ 0x01]))
    with pytest.warns(CacheWarning) as caught:
        compiled = compile_toy(core, tmp_path / "c")
    (warning,) = caught
    assert "damaged" in str(warning.message) and "checksum" in str(warning.message)
    assert compiled.get_property("LOADED_FROM_CACHE") is False


@pytest.mark.parametrize("signed", [False, True])
def test_an_entry_under_another_keys_name_is_refused_by_verify_and_export(tmp_path, signed):
    cache_dir = tmp_path / "c"
    signer = Signer("k") if signed else None
    config = {"CACHE_SIGNING_KEY": "k"} if signed else {}
    core = toy_core()
    compile_toy(core, cache_dir, **config)
    (first,) = entries(cache_dir)
    compile_toy(core, cache_dir, TOY_LEVEL=2, **config)
    (second,) = set(entries(cache_dir)) - {first}
    assert store.ModelCache(cache_dir).verify(signer) == []
    second.write_bytes(first.read_bytes())  # intact (and signed), but another key's entry
    problems = store.ModelCache(cache_dir).verify(signer)
    assert [path for path, _ in problems] == [second]
    # unsigned, the header's key gives it away; signed, the MAC binds the key looked up too
    assert ("does not verify" if signed else "not " + second.stem[:12]) in problems[0][1]
    count, _size, skipped = export_bundle(cache_dir, tmp_path / "b.tar", signer)
    assert (count, skipped) == (1, [second.name])


def test_the_damaged_entry_warning_says_its_problem_once(tmp_path):
    first, _ = two_entries(tmp_path / "c")
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.warns(CacheWarning) as caught:
        compile_toy(toy_core(), tmp_path / "c")
    (warning,) = caught
    message = str(warning.message)
    # One look found the damage; the look again under the lock must not add it a second time.
    assert message.count("compiled instead") == 1, message
    assert message.count(first.name) == 1, message
    assert message.endswith("the entry was replaced"), message


class FailingImport(ToyPlugin):
    def __init__(self, error):
        super().__init__("TOY", 1)
        self.error = error

    @ember.hookimpl
    def import_model(self, data, device_name):
        if self._mine(device_name):
            raise self.error
        return None


@pytest.mark.parametrize("error", [BlobFormatError("bad payload"), OSError("no space"),
                                   MemoryError()],
                         ids=lambda e: type(e).__name__)
def test_a_payload_the_plugin_refuses_is_one_cache_warning_and_a_compile(tmp_path, error):
    compile_toy(toy_core(), tmp_path / "c")  # an entry the failing plugin cannot import
    core = toy_core(FailingImport(error))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_toy(core, tmp_path / "c")
    (warning,) = caught
    assert warning.category is CacheWarning
    (entry,) = entries(tmp_path / "c")
    assert f"cache entry {entry.stem[:12]} for model could not be imported" in str(
        warning.message)
    assert type(error).__name__ in str(warning.message)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert compiled(np.zeros(3, np.float32))[0].tolist() == [1, 1, 1]
    # (at least: the second look, under the lock, counts it again)
    assert ember_cache.stats(tmp_path / "c").damaged >= 1


@pytest.mark.parametrize("error", [ValueError("bad value"), KeyError("missing"),
                                   RuntimeError("runtime"), AssertionError("assertion"),
                                   TypeError("a typo")],
                         ids=lambda e: type(e).__name__)
def test_a_plugins_bug_on_import_is_a_plugin_warning_naming_it_and_a_compile(tmp_path, error):
    """Not one of Ember's errors: a bug in the plugin, which the user must not take for the
    cache's routine recompile. One PluginWarning naming the plugin and the device (not a
    CacheWarning, which applications filter as noise); the model still runs, compiled."""
    compile_toy(toy_core(), tmp_path / "c")
    core = toy_core(FailingImport(error))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_toy(core, tmp_path / "c")
    (warning,) = caught
    assert warning.category is PluginWarning
    message = str(warning.message)
    assert message.startswith("toy (device TOY.0) raised " + type(error).__name__)
    assert "importing cache entry" in message and "bug in the plugin" in message
    assert "BlobFormatError" in message  # what it should have raised
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert compiled(np.zeros(3, np.float32))[0].tolist() == [1, 1, 1]


class FailingExport(ToyPlugin):
    def __init__(self, error):
        super().__init__("TOY", 1)
        self.error = error

    @ember.hookimpl
    def export_model(self, compiled_model, device_name):
        if self._mine(device_name):
            raise self.error
        return None


def test_a_model_the_plugin_cannot_export_is_compiled_and_not_cached(tmp_path):
    core = toy_core(FailingExport(NotSupportedError("no export of this one")))
    with pytest.warns(CacheWarning, match="exporting model for the cache failed"):
        compiled = compile_toy(core, tmp_path / "c")
    assert compiled(np.zeros(3, np.float32))[0].tolist() == [1, 1, 1]
    assert entries(tmp_path / "c") == []


def test_a_plugins_bug_on_export_does_not_undo_the_compile_but_names_the_plugin(tmp_path):
    core = toy_core(FailingExport(AttributeError("'NoneType' object has no attribute 'raw'")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_toy(core, tmp_path / "c")
    (warning,) = caught
    assert warning.category is PluginWarning
    assert str(warning.message).startswith("toy (device TOY.0) raised AttributeError while "
                                           "exporting model for the cache (it is not cached)")
    assert "NotSupportedError" in str(warning.message)
    assert compiled(np.zeros(3, np.float32))[0].tolist() == [1, 1, 1]
    assert entries(tmp_path / "c") == []


def test_a_miss_next_to_an_entry_of_the_same_model_says_what_differs(tmp_path, caplog):
    import logging

    core = toy_core()
    compile_toy(core, tmp_path / "c")
    with caplog.at_level(logging.INFO, logger="ember.cache"):
        compile_toy(core, tmp_path / "c", TOY_LEVEL=2)
    assert ("cache miss for model on TOY.0: an entry for the same model differs: "
            "property TOY_LEVEL 1 cached, 2 now") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ember.cache"):
        compile_toy(toy_core(), tmp_path / "other")  # nothing to compare with: nothing said
    assert "cache miss" not in caplog.text


# -- the origin of an imported blob ---------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("plugin", "ember-other"), ("plugin_version", "0.9"), ("device_architecture", "toy-2"),
    ("device", "OTHER.0"),
])
def test_import_model_refuses_a_blob_made_elsewhere(field, value):
    core = toy_core()
    exported = core.compile_model(identity_model_bytes(), "TOY.0").export_model()
    header, payload = blob.unpack(exported)
    fields = {name: getattr(header, name) for name in ("ember_version", "plugin",
                                                       "plugin_version", "device",
                                                       "device_architecture", "flags")}
    assert core.import_model(blob.pack(fields, payload), "TOY.0")  # as exported: accepted
    forged = blob.pack({**fields, field: value}, payload)
    with pytest.raises(BlobFormatError, match=field.replace("_", " ") if field != "device"
                       else "compiled for OTHER.0"):
        core.import_model(forged, "TOY.0")


def test_a_plugin_version_upgrade_refuses_exported_blobs():
    old = ToyPlugin("TOY", 1)
    old.__version__ = "1.0"
    exported = toy_core(old).compile_model(identity_model_bytes(), "TOY.0").export_model()
    new = ToyPlugin("TOY", 1)
    new.__version__ = "1.1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BlobFormatError, match=r"plugin version '1\.0'"):
            toy_core(new).import_model(exported, "TOY.0")


# -- eviction -------------------------------------------------------------------------------------


def test_the_size_bound_is_inclusive(tmp_path):
    first, second = two_entries(tmp_path / "c")
    cache = store.ModelCache(tmp_path / "c")
    total = first.stat().st_size + second.stat().st_size
    assert cache.evict(total) == []  # exactly at the bound: nothing to remove
    assert len(entries(tmp_path / "c")) == 2
    assert len(cache.evict(total - 1)) == 1  # one byte over: one entry goes
    assert len(entries(tmp_path / "c")) == 1


def test_the_lock_timeout_comes_from_the_environment(monkeypatch):
    from ember.cache import cached_compile

    monkeypatch.delenv(cached_compile.LOCK_TIMEOUT_ENV, raising=False)
    assert cached_compile.lock_timeout() == 300.0
    monkeypatch.setenv(cached_compile.LOCK_TIMEOUT_ENV, "2.5")
    assert cached_compile.lock_timeout() == 2.5
    monkeypatch.setenv(cached_compile.LOCK_TIMEOUT_ENV, "soon")
    assert cached_compile.lock_timeout() == 300.0
