"""The kernel cache handle that devices without EXPORT_IMPORT get in compile (``.cl_cache``)."""

import pytest

import ember
from ember import cache as ember_cache
from ember.errors import CacheWarning
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
        binary = None
        if cache is not None:
            key = cache.key({"source": source.decode(), "options": "-O3", "device": "kern"})
            with cache.lock(key):
                binary = cache.get(key)
                if binary is not None and bytes(binary).startswith(b"BAD"):
                    cache.reject(key, "the driver refused the binary")
                    binary = None
                if binary is None:
                    binary = self._build(source)
                    cache.put(key, binary, name="add_one")
        else:
            binary = self._build(source)
        self.loaded.append(bytes(binary))
        return AddOneModel(model.inputs, model.outputs)

    def _build(self, source):
        self.builds += 1
        return b"BINARY:" + source


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
