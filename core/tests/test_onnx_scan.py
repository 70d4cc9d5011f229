"""ember.model.onnx_scan: whether a model file names external data, without parsing it."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ember.model import onnx_scan
from ember.model.onnx_scan import refers_to_external_data
from ember.testing.models import dense_stack


def many_nodes(count: int) -> onnx.ModelProto:
    """A chain of ``count`` Identity nodes: a graph whose walk outruns its budget."""
    nodes = [helper.make_node("Identity", [f"t{i}"], [f"t{i + 1}"], name=f"n{i}")
             for i in range(count)]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"t{count}", TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


def with_external_weight(model: onnx.ModelProto) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones(4, np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    model.graph.initializer.append(weight)
    return model


def walk_within_budget(data: bytes) -> bool:
    """Whether the walk of ``data`` ends within the budget refers_to_external_data gives it."""
    budget = max(onnx_scan._MIN_FIELDS, len(data) // onnx_scan._BYTES_PER_FIELD)
    try:
        onnx_scan._walk(memoryview(data), budget=budget)
    except onnx_scan._OverBudget:
        return False
    return True


def test_a_model_of_big_weights_is_answered_by_the_walk_alone():
    data = dense_stack(2, 256).SerializeToString()
    assert onnx_scan._MARKER not in data
    assert walk_within_budget(data)  # so the 0.5 MB search never runs
    assert refers_to_external_data(data) is False
    assert refers_to_external_data(with_external_weight(dense_stack(2, 256))
                                   .SerializeToString()) is True


def test_a_marker_inside_weights_is_a_coincidence_the_walk_sees_through():
    model = dense_stack(1, 16)
    marker = np.frombuffer(onnx_scan._MARKER + b"\0\0", np.float32)  # 12 bytes: 3 floats
    model.graph.initializer.append(numpy_helper.from_array(marker.copy(), "coincidence"))
    data = model.SerializeToString()
    assert onnx_scan._MARKER in data
    assert refers_to_external_data(data) is False


def test_many_small_nodes_past_the_budget_fall_back_to_the_search():
    data = many_nodes(2000).SerializeToString()
    assert not walk_within_budget(data)
    assert refers_to_external_data(data) is False  # no marker: the search says so
    external = with_external_weight(many_nodes(2000)).SerializeToString()
    assert refers_to_external_data(external) is True  # marker found, the whole walk confirms
    named = many_nodes(2000)
    named.graph.node[5].name = onnx_scan._MARKER.decode()  # the marker, but in a node's name
    assert refers_to_external_data(named.SerializeToString()) is False


def test_bytes_that_are_no_model_answer_by_the_marker():
    assert refers_to_external_data(b"\xff" * 64) is False  # wire type 7: not walkable
    assert refers_to_external_data(b"\xff" * 64 + onnx_scan._MARKER) is True  # maybe: ask onnx
    assert refers_to_external_data(b"") is False


def test_forged_bytes_get_an_answer_never_an_exception():
    """A model file is untrusted input: truncated, bit-flipped and spliced forms of real models
    (with and without an external reference) answer True or False; the intact ones that name
    external data answer True."""
    import random

    from ember.testing import ppocr_cls_path

    rng = random.Random(11)
    external = with_external_weight(many_nodes(3)).SerializeToString()
    seeds = [ppocr_cls_path().read_bytes(), dense_stack(2, 64).SerializeToString(), external,
             with_external_weight(dense_stack(1, 32)).SerializeToString()]
    assert all(refers_to_external_data(seed) for seed in seeds[2:])
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            spot = rng.randrange(len(data))
            action = rng.random()
            if action < 0.5:
                data[spot] = rng.randrange(256)  # a flipped byte: lengths and tags lie
            elif action < 0.8:
                del data[spot:]  # truncated
                if not data:
                    data = bytearray(b"\x0a")
            else:
                data[spot:spot] = rng.choice(seeds)[:rng.randrange(1, 64)]  # spliced
        assert refers_to_external_data(bytes(data)) in (True, False)
    deep = b"\x3a\x02" * 200  # graph fields nested far beyond any real model
    assert refers_to_external_data(deep) in (True, False)
