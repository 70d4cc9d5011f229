"""A Model's identity in the model cache: read and not changed, it is its file (the same entry and
the same digest memo as compile_model(path)); edited, it is its source and its recipe, found
without parsing; its graph changed in place, it is its serialisation."""

import shutil

import numpy as np
import pytest

import ember
from ember.errors import InvalidModelError
from ember.testing import ppocr_cls_path

IMAGE = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)


def compile_cached(core, model, cache):
    return core.compile_model(model, "CPU", {"CACHE_DIR": str(cache)})


def test_a_read_model_hits_the_entry_of_its_path_without_parsing(tmp_path):
    path = tmp_path / "cls.onnx"
    shutil.copy(ppocr_cls_path(), path)
    cache = tmp_path / "cache"
    expected = compile_cached(ember.Core(), str(path), cache)(IMAGE)[0]
    model = ember.Core().read_model(path)
    warm = compile_cached(ember.Core(), model, cache)
    assert warm.get_property("LOADED_FROM_CACHE") and not model.is_parsed
    np.testing.assert_array_equal(warm(IMAGE)[0], expected)
    assert len(list((cache / "blobs").glob("*.blob"))) == 1


def test_an_edited_model_keys_by_its_recipe_and_a_changed_proto_by_its_bytes(tmp_path):
    cache = tmp_path / "cache"
    core = ember.Core()

    def reshaped(shape):
        model = core.read_model(ppocr_cls_path())
        model.reshape(shape)
        return model

    first = compile_cached(core, reshaped([1, 3, 48, 192]), cache)
    assert not first.get_property("LOADED_FROM_CACHE")
    again = reshaped([1, 3, 48, 192])
    assert compile_cached(ember.Core(), again, cache).get_property("LOADED_FROM_CACHE")
    assert not again.is_parsed  # the recipe found the entry
    other = compile_cached(ember.Core(), reshaped([2, 3, 48, 192]), cache)
    assert not other.get_property("LOADED_FROM_CACHE")  # another recipe, another entry
    assert other(np.concatenate([IMAGE, IMAGE]))[0].shape == (2, 2)
    changed = reshaped([1, 3, 48, 192])
    changed.proto.doc_string = "changed in place"
    assert not compile_cached(ember.Core(), changed, cache).get_property("LOADED_FROM_CACHE")
    parsed = reshaped([1, 3, 48, 192])
    _ = parsed.proto.graph.node  # read, not changed: still its recipe
    assert compile_cached(ember.Core(), parsed, cache).get_property("LOADED_FROM_CACHE")


def test_external_weights_are_found_without_onnx_and_pinned_by_the_key(tmp_path):
    import onnx

    from ember.model.onnx_scan import external_locations
    from ember.testing.models import dense_stack

    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save_model(dense_stack(1, 16), folder / "m.onnx", save_as_external_data=True,
                    location="w.bin", size_threshold=0)
    assert external_locations((folder / "m.onnx").read_bytes()) == {"w.bin"}
    cache = tmp_path / "cache"
    x = np.ones((1, 16), np.float32)
    cold = compile_cached(ember.Core(), str(folder / "m.onnx"), cache)
    model = ember.Core().read_model(folder / "m.onnx")
    warm = compile_cached(ember.Core(), model, cache)
    assert warm.get_property("LOADED_FROM_CACHE") and not model.is_parsed
    np.testing.assert_array_equal(warm(x)[0], cold(x)[0])
    weights = bytearray((folder / "w.bin").read_bytes())
    weights[:4] = np.float32(3.0).tobytes()
    (folder / "w.bin").write_bytes(bytes(weights))  # the weights change, the model file not
    changed = compile_cached(ember.Core(), ember.Core().read_model(folder / "m.onnx"), cache)
    assert not changed.get_property("LOADED_FROM_CACHE")
    (folder / "w.bin").unlink()
    with pytest.raises(InvalidModelError, match=r"m\.onnx.*[Ee]xternal data"):
        ember.Core().compile_model(folder / "m.onnx", "CPU")
