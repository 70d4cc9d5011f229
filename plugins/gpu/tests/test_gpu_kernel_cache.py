"""Compiled OpenCL programs in CACHE_DIR (``.cl_cache`` entries), through the core's kernel cache.

These tests are about caching, so each has its own cache directory, and the in-memory primitive
cache is off (it would answer before the directory is read).
"""

import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper

import ember
import ember_gpu
from ember import cache as ember_cache
from ember.errors import CacheWarning
from ember.testing import mlp, random_inputs
from ember_gpu import primitive_cache


@pytest.fixture(autouse=True)
def no_primitive_cache():
    capacity = primitive_cache.get_primitive_cache_capacity()
    primitive_cache.set_primitive_cache_capacity(0)
    yield
    primitive_cache.set_primitive_cache_capacity(capacity)


@pytest.fixture
def creations(caplog):
    """The verbose lines logged from here on: how each program was created."""
    caplog.set_level(logging.DEBUG, logger="ember_gpu.verbose")

    def lines():
        return [r.getMessage().split(",")[2] for r in caplog.records
                if r.name == "ember_gpu.verbose"]

    return lines


def gate_model(size=3):
    """A static model (built in compile): y = x * sigmoid(x)."""
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["s"], name="gate"),
         helper.make_node("Mul", ["x", "s"], ["y"], name="gated")], "gate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, size])])
    return helper.make_model(graph).SerializeToString()


def compile_cached(cache_dir, model=None):
    core = ember.Core()
    return core.compile_model(model or gate_model(), "GPU", {"CACHE_DIR": str(cache_dir)})


def kernel_files(cache_dir):
    return sorted((cache_dir / "blobs").glob("*.cl_cache"))


def test_next_compile_builds_no_program_from_source(tmp_path, creations):
    first = compile_cached(tmp_path)
    assert len(kernel_files(tmp_path)) == 3  # static inputs: built and cached in compile_model
    second = compile_cached(tmp_path)
    assert creations() == ["create:cache_miss", "create:from_cache_blob"]
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    assert first(x)[0].tobytes() == second(x)[0].tobytes()
    assert second.get_property("LOADED_FROM_CACHE") is False  # no model blob: EXPORT_IMPORT-less
    assert len(kernel_files(tmp_path)) == 3
    assert not list(tmp_path.glob("blobs/*.blob"))
    # the model entry (ports), the plan of shape 2x3, the program of that plan
    entries = ember_cache.entries(tmp_path)
    assert {e.plugin for e in entries} == {"ember-gpu"}
    assert sorted(e.model_name for e in entries) == ["gate[2x3]", "gate[2x3]", "model"]
    assert ember_cache.verify(tmp_path) == []
    stats = ember_cache.stats(tmp_path)
    assert (stats.hits, stats.misses) == (3, 3)


def test_a_fresh_process_starts_from_the_binaries(tmp_path):
    code = ("import sys, ember; from ember.testing import cnn, random_inputs;"
            " core = ember.Core(); model = core.read_model(cnn().SerializeToString());"
            " compiled = core.compile_model(model, 'GPU', {'CACHE_DIR': sys.argv[1]});"
            " print(compiled(random_inputs(model.inputs))[0].tobytes().hex())")
    env = {**os.environ, "EMBER_VERBOSE": "2"}

    def run():
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, check=True, env=env).stdout.splitlines()
        return [line.split(",")[2] for line in out[:-1]], out[-1]

    cold, cold_result = run()
    warm, warm_result = run()
    assert cold == ["create:cache_miss"]
    assert warm == ["create:from_cache_blob"]  # nothing built from source
    assert warm_result == cold_result


def test_processes_starting_together_build_once(tmp_path):
    code = ("import sys, ember; from ember.testing import mlp;"
            " core = ember.Core();"
            " core.compile_model(mlp(hidden=24).SerializeToString(), 'GPU',"
            " {'CACHE_DIR': sys.argv[1]})(__import__('numpy').ones((2, 16), 'float32'))")
    env = {**os.environ, "EMBER_VERBOSE": "2"}
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    lines = [line for p in processes for line in p.communicate()[0].splitlines()]
    assert all(p.returncode == 0 for p in processes)
    assert sorted(line.split(",")[2] for line in lines) == [
        "create:cache_miss", "create:from_cache_blob"]


#: What each kind of entry's payload holds (a frame's kind, or a magic prefix): the model's
#: ports, a plan, a program binary.
MAGIC = {"model": b"EMGMODL\0", "plan": b"EMGPLAN\0", "program": b"EMBERCL"}


def entry_of(cache_dir, kind):
    (found,) = [f for f in kernel_files(cache_dir) if MAGIC[kind] in f.read_bytes()]
    return found


@pytest.mark.parametrize(("kind", "then"), [("model", "create:from_cache_blob"),
                                             ("plan", "create:from_cache_blob"),
                                             ("program", "create:cache_miss")])
def test_damaged_entry_is_rebuilt_and_replaced_with_one_warning(tmp_path, creations, kind, then):
    """Only the damaged entry is rebuilt: a model or plan entry from the model, a program
    entry from its source."""
    compile_cached(tmp_path)
    entry = entry_of(tmp_path, kind)
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF
    entry.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="damaged") as caught:
        compiled = compile_cached(tmp_path)
    assert len(caught) == 1
    assert creations() == ["create:cache_miss", then]
    assert ember_cache.verify(tmp_path) == []  # replaced
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(compiled(x)[0], x / (1 + np.exp(-x)), rtol=1e-6)
    compile_cached(tmp_path)
    assert creations()[-1] == "create:from_cache_blob"


@pytest.mark.parametrize("kind", ["model", "plan"])
def test_model_and_plan_entries_that_do_not_decode_are_rebuilt(tmp_path, creations, kind):
    """An intact container whose payload is not a valid entry (another build's, a foreign
    one): the payload is refused by the plan codec, rebuilt from the model and replaced."""
    compile_cached(tmp_path)
    handle = ember_cache.KernelCache(ember_cache.ModelCache(tmp_path), plugin="ember-gpu",
                                     plugin_version=ember_gpu.__version__, device="GPU.0")
    entry = entry_of(tmp_path, kind)
    (info,) = [e for e in ember_cache.entries(tmp_path) if e.path == entry]
    key = ember_cache.CacheKey({}, info.key)  # only the digest addresses an entry
    assert handle.get(key) is not None  # the same key the device used
    assert handle.put(key, MAGIC[kind] + b"\x01" + b"\xff" * 40)
    with pytest.warns(CacheWarning, match="rejected") as caught:
        compiled = compile_cached(tmp_path)
    assert len(caught) == 1
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(compiled(x)[0], x / (1 + np.exp(-x)), rtol=1e-6)
    assert ember_cache.verify(tmp_path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_cached(tmp_path)  # replaced: no warning any more


@pytest.mark.parametrize("payload", [b"EMBERCL\x01not a binary", b"a foreign payload"],
                         ids=["refused-by-the-driver", "not-ours"])
def test_rejected_binary_is_rebuilt_and_replaced_with_one_warning(tmp_path, creations, payload):
    compiled = compile_cached(tmp_path)
    (executable,) = compiled.device_model.specialisations
    handle = ember_cache.KernelCache(ember_cache.ModelCache(tmp_path), plugin="ember-gpu",
                                     plugin_version=ember_gpu.__version__, device="GPU.0")
    key = handle.key(executable.kernel.descriptor.cache_blob_id())
    assert handle.get(key) is not None  # the same key the device used
    assert handle.put(key, payload)
    with pytest.warns(CacheWarning, match="rejected") as caught:
        compile_cached(tmp_path)
    assert len(caught) == 1
    assert creations() == ["create:cache_miss", "create:cache_miss"]
    compile_cached(tmp_path)
    assert creations()[-1] == "create:from_cache_blob"


def test_models_specialised_at_inference_use_the_cache_and_warn_there(tmp_path, creations):
    proto = mlp(hidden=20).SerializeToString()
    model = ember.Core().read_model(proto)
    inputs = random_inputs(model.inputs, batch=3)
    compile_cached(tmp_path, proto)(inputs)
    entry = entry_of(tmp_path, "program")
    entry.write_bytes(entry.read_bytes()[:-10])  # truncated
    compiled = compile_cached(tmp_path, proto)  # nothing is built yet: the batch is unknown
    with pytest.warns(CacheWarning, match="damaged"):
        compiled(inputs)
    compile_cached(tmp_path, proto)(inputs)
    assert creations() == ["create:cache_miss", "create:cache_miss", "create:from_cache_blob"]


def test_without_cache_dir_nothing_is_written(tmp_path, creations, monkeypatch):
    monkeypatch.delenv("EMBER_CACHE_DIR", raising=False)
    ember.Core().compile_model(gate_model(4), "GPU")
    ember.Core().compile_model(gate_model(4), "GPU")
    assert creations() == ["create:cache_miss", "create:cache_miss"]
