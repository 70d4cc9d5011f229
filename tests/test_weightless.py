"""CACHE_MODE=OPTIMIZE_SIZE: blobs without weights, read back from the model file. OpenVINO
2026.4 misses on every run in this mode for ONNX input; Ember must hit."""

import warnings

import numpy as np
import pytest

import ember
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.errors import BlobFormatError, PropertyValueError
from ember.store import blob
from ember.testing.models import dense_stack

SIZE = {"CACHE_MODE": "OPTIMIZE_SIZE"}



@pytest.fixture(autouse=True)
def admit_every_compile(monkeypatch):
    """The entries these tests read must be stored whatever a compile took."""
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")

@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "dense.onnx"
    path.write_bytes(dense_stack(layers=3, dim=256).SerializeToString())  # 0.8 MB of weights
    return path


def compile_cached(model, cache_dir, device="TEMPLATE", **config):
    return ember.Core().compile_model(model, device, {"CACHE_DIR": str(cache_dir), **config})


def blob_size(cache_dir):
    (blob,) = (cache_dir / "blobs").glob("*.blob")
    return blob.stat().st_size


def run(compiled):
    return compiled(np.linspace(-1, 1, 512, dtype=np.float32).reshape(2, 256))[0]


def test_weightless_blob_hits_and_gives_identical_outputs(model_path, tmp_path):
    full = compile_cached(model_path, tmp_path / "speed")
    compile_cached(model_path, tmp_path / "size", **SIZE)
    warm = compile_cached(model_path, tmp_path / "size", **SIZE)
    assert warm.get_property("LOADED_FROM_CACHE") is True
    assert run(warm).tobytes() == run(full).tobytes()
    assert blob_size(tmp_path / "size") < blob_size(tmp_path / "speed") / 20


def test_a_weightless_entry_and_a_complete_one_are_different_entries(model_path, tmp_path):
    # "weightless" is part of the key: the two forms of one model never stand in for each other
    cache_dir = tmp_path / "c"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_cached(model_path, cache_dir)
        (full,) = (cache_dir / "blobs").glob("*.blob")
        small = compile_cached(model_path, cache_dir, **SIZE)
        assert small.get_property("LOADED_FROM_CACHE") is False
        (weightless,) = set((cache_dir / "blobs").glob("*.blob")) - {full}
        assert blob.unpack(weightless.read_bytes())[0].flags == ("weightless",)
        assert blob.unpack(full.read_bytes())[0].flags == ()
        for config in ({}, SIZE):
            warm = compile_cached(model_path, cache_dir, **config)
            assert warm.get_property("LOADED_FROM_CACHE") is True
            assert run(warm).tobytes() == run(small).tobytes()


def test_a_changed_model_file_is_a_miss(model_path, tmp_path, monkeypatch):
    from ember.cache import file_digest

    monkeypatch.setattr(file_digest, "RACY_SECONDS", 0.0)  # remember the digest at once
    compile_cached(model_path, tmp_path / "c", **SIZE)
    model_path.write_bytes(dense_stack(layers=3, dim=256, seed=7).SerializeToString())
    changed = compile_cached(model_path, tmp_path / "c", **SIZE)
    assert changed.get_property("LOADED_FROM_CACHE") is False
    expected = ember.Core().compile_model(model_path, "TEMPLATE")
    assert run(changed).tobytes() == run(expected).tobytes()


@pytest.mark.parametrize("source", ["model", "bytes"])
def test_models_not_given_as_files_keep_their_weights(model_path, tmp_path, source):
    model = (ember.Core().read_model(model_path) if source == "model"
             else model_path.read_bytes())
    compile_cached(model, tmp_path / "c", **SIZE)
    assert blob_size(tmp_path / "c") > model_path.stat().st_size / 2
    assert compile_cached(model, tmp_path / "c", **SIZE).get_property("LOADED_FROM_CACHE")


def test_devices_without_weightless_support_store_everything(model_path, tmp_path):
    assert "WEIGHTLESS_CACHE" not in ember.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    compile_cached(model_path, tmp_path / "c", "CPU", **SIZE)
    assert blob_size(tmp_path / "c") > model_path.stat().st_size / 2
    warm = compile_cached(model_path, tmp_path / "c", "CPU", **SIZE)
    assert warm.get_property("LOADED_FROM_CACHE") is True


def test_weights_that_are_not_the_compiled_ones_are_refused(model_path):
    from ember_template import plan_format

    plan = ember.Core().compile_model(model_path, "TEMPLATE").device_model.plan
    payload = plan_format.dumps(plan, weightless=True)
    with pytest.raises(BlobFormatError, match="no model file"):
        plan_format.loads(payload)
    with pytest.raises(BlobFormatError, match="not the one compiled"):
        plan_format.loads(payload, weights=lambda name: np.zeros((256, 256), np.float32))
    with pytest.raises(BlobFormatError, match="has no initializer"):
        plan_format.loads(payload, weights=lambda name: {}[name])


def test_bad_cache_mode_is_refused(model_path, tmp_path):
    with pytest.raises(PropertyValueError, match="OPTIMIZE_SIZE"):
        compile_cached(model_path, tmp_path / "c", CACHE_MODE="SMALL")
