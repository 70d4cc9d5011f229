"""The kernel cache handle that devices without EXPORT_IMPORT get in compile (``.cl_cache``)."""

import threading
import time
import warnings

import numpy as np
import pytest

import ember
from ember import cache as ember_cache
from ember.errors import BlobFormatError, CacheWarning, PluginWarning
from ember.testing.toy import AddOneModel, ToyPlugin, identity_model_bytes


class KernelBuilder(ToyPlugin):
    """Builds one "kernel" per compile, through the core's kernel cache when there is one."""

    def __init__(self):
        super().__init__("KERN", 1, export=False)
        self.builds = 0
        self.loaded = []

    @ember.hookimpl
    def compile(self, model, device_name, config, cache):
        if not self._mine(device_name):
            return None
        source = b"__kernel void add_one(__global float *x) { x[get_global_id(0)] += 1; }"
        if cache is not None:
            key = cache.key({"source": source.decode(), "options": "-O3", "device": "kern"})
            binary = cache.get_or_build(key, lambda: self._build(source), load_binary,
                                        name="add_one")
        else:
            binary, _ = self._build(source)
        self.loaded.append(binary)
        return AddOneModel(model.inputs, model.outputs)

    def _build(self, source):
        self.builds += 1
        binary = b"BINARY:" + source
        return binary, binary


def load_binary(payload):
    """What a driver does with a stored binary: refuse one it cannot load (as ember-gpu does,
    with one of Ember's errors: that is what "rebuild it" means to the kernel cache)."""
    if not bytes(payload).startswith(b"BINARY:"):
        raise BlobFormatError("the driver refused the binary")
    return bytes(payload)


@pytest.fixture
def plugin():
    return KernelBuilder()


@pytest.fixture
def core(plugin):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(plugin, "kern")
    return core


def compile_cached(core, cache_dir):
    return core.compile_model(identity_model_bytes(), "KERN", {"CACHE_DIR": str(cache_dir)})


def kernel_files(cache_dir):
    return sorted((cache_dir / "blobs").glob("*.cl_cache"))


def test_kernels_are_built_once_and_no_model_blob_is_written(core, plugin, tmp_path):
    for _ in range(3):
        compiled = compile_cached(core, tmp_path)
        assert compiled.get_property("LOADED_FROM_CACHE") is False  # the model is not cached
    assert plugin.builds == 1 and len(set(plugin.loaded)) == 1
    assert len(kernel_files(tmp_path)) == 1 and not list(tmp_path.glob("blobs/*.blob"))
    (entry,) = ember_cache.entries(tmp_path)
    assert entry.model_name == "add_one" and entry.plugin == "kern"
    assert ember_cache.verify(tmp_path) == []


def test_without_cache_dir_the_plugin_gets_no_handle(core, plugin):
    core.compile_model(identity_model_bytes(), "KERN")
    core.compile_model(identity_model_bytes(), "KERN")
    assert plugin.builds == 2


def test_damaged_kernel_entry_is_rebuilt_with_one_warning(core, plugin, tmp_path):
    compile_cached(core, tmp_path)
    (entry,) = kernel_files(tmp_path)
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF
    entry.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="damaged") as caught:
        compile_cached(core, tmp_path)
    assert len(caught) == 1 and plugin.builds == 2
    assert ember_cache.verify(tmp_path) == []  # replaced


def test_rejected_binary_is_rebuilt_and_replaced(core, plugin, tmp_path):
    compile_cached(core, tmp_path)
    handle = ember.cache.KernelCache(ember_cache.ModelCache(tmp_path), plugin="kern",
                                     plugin_version="", device="KERN.0")
    key = handle.key({"source": "__kernel void add_one(__global float *x) "
                                "{ x[get_global_id(0)] += 1; }", "options": "-O3",
                      "device": "kern"})
    assert handle.put(key, b"BAD binary from an old driver")
    with pytest.warns(CacheWarning, match="rejected"):
        compile_cached(core, tmp_path)
    assert plugin.builds == 2
    compile_cached(core, tmp_path)
    assert plugin.builds == 2  # the rebuilt binary was stored


def test_kernel_entries_count_in_statistics_and_eviction(core, tmp_path):
    compile_cached(core, tmp_path)
    compile_cached(core, tmp_path)
    stats = ember_cache.stats(tmp_path)
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    ember_cache.prune(tmp_path, 0)
    assert kernel_files(tmp_path) == []


def test_get_or_build_waits_at_most_the_lock_timeout_setting(tmp_path, monkeypatch):
    """A process holding the key's lock too long: the build happens here too, with a warning
    after EMBER_CACHE_LOCK_TIMEOUT seconds (not the 300 s default)."""
    handle = ember.cache.KernelCache(ember_cache.ModelCache(tmp_path), plugin="kern",
                                     plugin_version="", device="KERN.0")
    key = handle.key({"source": "x"})
    monkeypatch.setenv("EMBER_CACHE_LOCK_TIMEOUT", "0.2")
    with handle.lock(key) as held:  # another builder holds it (the same lock, here)
        assert held
        built = handle.get_or_build(key, lambda: ("built", b"BINARY:x"), load_binary, name="x")
    assert built == "built"
    assert len(handle.problems) == 1 and "waited 0.2 s" in handle.problems[0]
    assert handle.get_or_build(key, lambda: ("again", b"BINARY:y"), load_binary) == b"BINARY:x"


def test_get_or_build_reads_an_entry_published_while_it_waited(tmp_path):
    handle = ember.cache.KernelCache(ember_cache.ModelCache(tmp_path), plugin="kern",
                                     plugin_version="", device="KERN.0")
    key = handle.key({"source": "x"})
    builds = []

    def build():
        builds.append(1)
        return "built", b"BINARY:x"

    with handle.lock(key):
        waiter = threading.Thread(target=lambda: builds.append(
            handle.get_or_build(key, build, load_binary)))
        waiter.start()
        time.sleep(0.2)  # it looked, found nothing, and waits for the lock
        handle.put(key, b"BINARY:published")  # the holder publishes, then releases
    waiter.join()
    assert builds == [b"BINARY:published"] and handle.problems == []


class Recorder(ToyPlugin):
    """Keeps the model ``compile`` received, and reads nothing of it."""

    def __init__(self):
        super().__init__("REC", 1, export=False)
        self.models = []

    @ember.hookimpl
    def compile(self, model, device_name, config, cache):
        if not self._mine(device_name):
            return None
        self.models.append((model, cache.model_digest(model) if cache is not None else None))
        return AddOneModel([], [])


def test_with_a_kernel_cache_the_model_is_parsed_only_if_the_device_reads_it(tmp_path):
    from ember.model.model import DeferredModel

    plugin = Recorder()
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(plugin, "rec")
    path = tmp_path / "m.onnx"
    path.write_bytes(identity_model_bytes())
    config = {"CACHE_DIR": str(tmp_path / "cache")}
    core.compile_model(str(path), "REC", config)
    core.compile_model(identity_model_bytes(), "REC", config)
    (from_path, path_digest), (from_bytes, bytes_digest) = plugin.models
    assert isinstance(from_path, DeferredModel) and isinstance(from_bytes, DeferredModel)
    assert "_header" not in vars(from_path) and "_header" not in vars(from_bytes)  # not read
    assert path_digest == bytes_digest  # the content's digest, however it was given
    assert from_path.path == path.resolve() and from_path.inputs[0].name == "x"  # parsed now
    path.write_bytes(b"not onnx")
    core.compile_model(str(path), "REC", config)
    broken, digest = plugin.models[-1]
    assert digest != path_digest
    with pytest.raises(ember.errors.InvalidModelError):
        broken.inputs  # noqa: B018 - parsing is what is tested
    with pytest.raises(ember.errors.ModelNotFoundError):
        core.compile_model(str(tmp_path / "absent.onnx"), "REC", config)
    core.compile_model(identity_model_bytes(), "REC")  # no cache: parsed as before
    assert not isinstance(plugin.models[-1][0], DeferredModel)


def test_a_plugins_bug_in_load_is_a_plugin_warning_naming_it_and_a_rebuild(
        core, plugin, tmp_path, monkeypatch):
    compile_cached(core, tmp_path)

    def buggy_load(payload):
        return payload.tobytes().decode("ascii").encode("utf-16")[4096]  # an IndexError

    monkeypatch.setitem(globals(), "load_binary", buggy_load)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_cached(core, tmp_path)
    (warning,) = caught  # once: the look under the lock does not load the refused entry again
    assert warning.category is PluginWarning
    assert str(warning.message).startswith("kern (device KERN.0) raised IndexError while "
                                           "loading kernel entry")
    assert "bug in the plugin" in str(warning.message) and plugin.builds == 2
    assert compiled(np.zeros(3, np.float32))[0].tolist() == [1, 1, 1]
