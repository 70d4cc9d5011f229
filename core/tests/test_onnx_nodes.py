"""ember.model.onnx_nodes: a graph's nodes read from the wire, as onnx reads them, and total.

Every field the reader gives is compared with what onnx's own parse of the same bytes says, on
the real models and on graphs built to hold each case (subgraphs, each kind of attribute, a
Constant's tensor, a size-0 dimension, a graph written twice); forged bytes give an OnnxGraph
or InvalidModelError, never anything else.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ember.errors import InvalidModelError
from ember.model.onnx_nodes import MAX_DEPTH, OnnxGraph, read_graph
from ember.testing import cnn, mlp, ppocr_cls_path
from ember.testing.zoo import model_zoo


def onnx_says(graph: onnx.GraphProto):
    """What onnx's parse says, in the reader's terms: the nodes depth first, the value types,
    the inputs with a size-0 dimension and the constants of the main graph."""
    def nodes(graph):
        for node in graph.node:
            attributes = {}
            for a in node.attribute:
                if a.type in (1, 2, 3):
                    value = (a.f, a.i, a.s.decode("utf-8", "replace"))[a.type - 1]
                    attributes[a.name] = value
            yield (node.op_type, node.domain, node.name, tuple(node.input), tuple(node.output),
                   attributes)
            for a in node.attribute:
                for subgraph in ([a.g] if a.type == 5 else list(a.graphs)):
                    yield from nodes(subgraph)

    types = {t.name: t.data_type for t in graph.initializer}
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    empty = {i.name for i in graph.input if i.type.HasField("tensor_type") and any(
        d.HasField("dim_value") and d.dim_value == 0 for d in i.type.tensor_type.shape.dim)}
    constants = {t.name for t in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return list(nodes(graph)), types, empty, constants


def reader_says(found: OnnxGraph):
    nodes = [(n.op_type, n.domain, n.name, n.inputs, n.outputs, n.attributes)
             for n in found.walk()]
    return nodes, found.value_types, set(found.empty_inputs), set(found.constants)


def with_everything() -> onnx.ModelProto:
    """A graph holding each case the reader must get right."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 4])
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n", 4])
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 4])
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["b"], name="inner_relu")],
                             "then", [], [branch_out])
    inner = helper.make_graph([helper.make_node("If", ["flag"], ["b"], then_branch=then,
                                                else_branch=then, name="nested_if")],
                              "else", [], [branch_out])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
            np.ones((2,), np.float64))),
        helper.make_node("If", ["flag"], ["chosen"], then_branch=then, else_branch=inner),
        helper.make_node("Resize", ["chosen", "", "scales"], ["resized"], mode="cubic",
                         antialias=1, cubic_coeff_a=-0.5, name="resize"),
        helper.make_node("Cast", ["resized"], ["y"], to=TensorProto.DOUBLE),
        helper.make_node("Custom", ["y"], ["z"], domain="com.example", label=b"\xff\xfe"),
    ]
    scales = numpy_helper.from_array(np.ones(2, np.float32), "scales")
    graph = helper.make_graph(nodes, "everything", [x, flag], [y], [scales],
                              value_info=[helper.make_tensor_value_info(
                                  "resized", TensorProto.FLOAT16, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


@pytest.mark.parametrize("model", ["mlp", "cnn", "everything"])
def test_the_reader_agrees_with_onnx_on_built_graphs(model):
    proto = {"mlp": mlp, "cnn": cnn, "everything": with_everything}[model]()
    data = proto.SerializeToString()
    assert reader_says(read_graph(data)) == onnx_says(onnx.load_from_string(data).graph)


@pytest.mark.parametrize("zoo_model", model_zoo(), ids=lambda m: m.name)
def test_the_reader_agrees_with_onnx_on_the_zoo(zoo_model):
    source = zoo_model.load()
    data = source if isinstance(source, bytes) else source.read_bytes()
    assert reader_says(read_graph(data)) == onnx_says(onnx.load_from_string(data).graph)


def test_a_graph_written_twice_is_merged_as_protobuf_merges_it():
    # a second graph field hiding a node from a reader that keeps only one of them
    first = with_everything()
    second = onnx.ModelProto()
    second.graph.node.add().CopyFrom(helper.make_node("TopK", ["y", "k"], ["v", "i"]))
    data = first.SerializeToString() + second.SerializeToString()
    found = read_graph(data)
    assert [n.op_type for n in found.nodes][-1] == "TopK"
    assert reader_says(found) == onnx_says(onnx.load_from_string(data).graph)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (the tag and the length as one-byte varints or more)."""
    def varint(value):
        out = b""
        while value >= 0x80:
            out += bytes([value & 0x7F | 0x80])
            value >>= 7
        return out + bytes([value])
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_subgraphs_nested_past_the_bound_are_refused():
    # written by hand: onnx's own protobuf refuses to build a message this deep
    def nested(levels):
        graph = field(1, field(4, b"Relu"))
        for _ in range(levels):
            attribute = field(1, b"then_branch") + b"\xa0\x01\x05" + field(6, graph)  # type GRAPH
            graph = field(1, field(4, b"If") + field(5, attribute))
        return b"\x08\x08" + field(7, graph)  # ir_version 8, the graph

    assert len(list(read_graph(nested(MAX_DEPTH)).walk())) == MAX_DEPTH + 1
    with pytest.raises(InvalidModelError, match="nested deeper"):
        read_graph(nested(MAX_DEPTH + 1))


def test_bytes_without_a_graph_are_refused():
    for data in (b"", b"\x08\x07", b"not a model at all"):
        with pytest.raises(InvalidModelError):
            read_graph(data)


def test_any_bytes_give_a_graph_or_invalid_model_error():
    data = with_everything().SerializeToString()
    forged = [data[:cut] for cut in range(len(data))]
    rng = np.random.default_rng(0)
    for _ in range(2000):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            damaged[position] = int(rng.integers(0, 256))
        forged.append(bytes(damaged))
    forged += [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for size in (1, 7, 64, 4096)]
    outcomes = set()
    for bytes_ in forged:
        try:
            outcomes.add(type(read_graph(bytes_)).__name__)
        except InvalidModelError:
            outcomes.add("InvalidModelError")
    assert outcomes <= {"OnnxGraph", "InvalidModelError"}
    assert outcomes == {"OnnxGraph", "InvalidModelError"}  # both were tried


def test_reading_a_models_nodes_imports_no_onnx(tmp_path):
    code = f"""
        import json, sys
        import ember
        from ember.plugin import onnx_graph
        model = ember.Core().read_model({str(ppocr_cls_path())!r})
        nodes = list(onnx_graph(model).walk())
        print(json.dumps([len(nodes), "onnx" in sys.modules, "ml_dtypes" in sys.modules]))
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, check=True)
    count, onnx_loaded, ml_dtypes_loaded = json.loads(out.stdout.splitlines()[-1])
    assert count > 0 and not onnx_loaded and not ml_dtypes_loaded
