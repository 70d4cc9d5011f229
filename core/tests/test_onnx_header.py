"""The ONNX header reader (ember.model.onnx_header) that read_model uses instead of onnx: it reads
what onnx's full parse reads, from bytes and from files read in pages, and refuses forged bytes with
InvalidModelError, the error the full parse gives."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ember
from ember.errors import InferenceInputError, InvalidModelError
from ember.model.model import Model
from ember.model.onnx_header import read_header
from ember.model.protobuf_wire import FileBytes
from ember.testing import ppocr_cls_path
from ember.testing.model_files import model_file
from ember.testing.models import cnn, mlp


def reference(proto):
    """Ports, opsets, metadata and name as onnx's parse gives them."""
    from ember.testing.fuzz_targets import _reference

    return _reference(proto)


def header_of(model):
    return (model.inputs, model.outputs, model.opsets, model.metadata, model.friendly_name)


def real_models():
    names = ["ch_ppocr_mobile_v2.0_cls_infer.onnx", "ch_PP-OCRv4_det_infer.onnx",
             "ch_PP-OCRv4_rec_infer.onnx"]
    return [model_file(name) for name in names]


@pytest.mark.parametrize("path", real_models(), ids=lambda p: p.name)
def test_real_models_read_as_onnx_reads_them(path):
    model = ember.Core().read_model(path)
    assert header_of(model) == reference(onnx.load(str(path)))
    assert not model.is_parsed


def test_weights_listed_as_inputs_are_not_ports_and_metadata_and_opsets_are_read():
    proto = cnn(channels=1, size=4, classes=2)
    proto.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                             for t in proto.graph.initializer)
    proto.metadata_props.add(key="labels", value="cat,dog")
    proto.opset_import.add(domain="com.microsoft", version=1)
    model = ember.Core().read_model(proto.SerializeToString())
    assert [p.name for p in model.inputs] == [proto.graph.input[0].name]
    assert model.metadata == {"labels": "cat,dog"}
    assert model.opsets == {"": proto.opset_import[0].version, "com.microsoft": 1}
    assert header_of(model) == reference(proto)


def test_dimensions_element_types_and_names():
    x = helper.make_tensor_value_info("x", TensorProto.INT64, ["batch", 3, None, "?"])
    x.type.tensor_type.shape.dim[2].dim_value = -5  # negative: unknown, as onnx's readers say
    half = helper.make_tensor_value_info("h", TensorProto.FLOAT16, [2])
    text = helper.make_tensor_value_info("s", TensorProto.STRING, [])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, ["batch", 3, None, None])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "named graph",
                              [x, half, text], [y])
    proto = helper.make_model(graph)
    model = ember.Core().read_model(proto.SerializeToString())
    assert model.inputs[0].shape == ("batch", 3, None, None)
    assert [p.dtype for p in model.inputs] == [np.int64, np.float16, np.dtype(object)]
    assert model.friendly_name == "named graph"
    assert header_of(model) == reference(proto)


def test_bfloat16_ports_are_mapped_by_onnx_and_unknown_types_refused():
    proto = mlp()
    proto.graph.output[0].type.tensor_type.elem_type = TensorProto.BFLOAT16
    model = ember.Core().read_model(proto.SerializeToString())
    assert model.outputs[0].dtype == reference(proto)[1][0].dtype  # ml_dtypes' bfloat16
    proto.graph.output[0].type.tensor_type.elem_type = 999
    with pytest.raises(InvalidModelError, match="unknown element type 999"):
        ember.Core().read_model(proto.SerializeToString())


@pytest.mark.parametrize("data, reason", [
    (b"", "no ONNX graph"),
    (b"\x08\x07", "no ONNX graph"),  # ir_version 7 and nothing else
    (b"\x08\x07\x3a\x00", "declares no outputs"),  # an empty graph
    (b"\x08\x07\x3a\x05\x0a\x03", "well-formed"),  # a node that runs past its graph
    (b"\x08" + b"\xff" * 11, "well-formed"),  # a varint of more than 64 bits
    (b"\x0b\x08\x07", "well-formed"),  # a group (wire type 3)
    (b"\x08\x07\x3a\xff\xff\xff\xff\x0f", "well-formed"),  # a graph of 4 GB in 8 bytes
    (b"\x08\x07\x3a\x06\x62\x04\x0a\x02\xff\xfe", "well-formed"),  # an output named in bad UTF-8
])
def test_forged_bytes_give_invalid_model_error(data, reason, tmp_path):
    path = tmp_path / "forged.onnx"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(InvalidModelError, match=reason):
            ember.Core().read_model(source)


def test_every_truncation_is_refused_or_read_as_onnx_reads_it(tmp_path):
    data = mlp(features=3, hidden=2, classes=2).SerializeToString()
    for end in range(len(data)):
        try:
            model = ember.Core().read_model(data[:end])
        except InvalidModelError:
            continue
        assert header_of(model) == reference(onnx.load_from_string(data[:end])), end


def test_a_file_that_shrinks_while_read_is_refused(tmp_path):
    data = mlp().SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        pages = FileBytes(fd, len(data))
        os.truncate(path, len(data) // 2)
        with pytest.raises(InvalidModelError, match="well-formed"):
            read_header(pages, str(path))
    finally:
        os.close(fd)


def test_reading_ports_parses_nothing_and_the_graph_is_parsed_with_edits_applied():
    model = ember.Core().read_model(mlp().SerializeToString())
    model.reshape({"x": [2, 16]})
    assert model.inputs[0].shape == (2, 16) and model.outputs[0].shape == (2, 10)
    assert not model.is_parsed and [e.kind for e in model.edits] == ["reshape"]
    dims = model.proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 16] and model.is_parsed
    assert header_of(model)[:2] == reference(model.proto)[:2]
    with pytest.raises(InferenceInputError, match="rank 2"):
        model.reshape({"x": [1, 2, 3]})
    assert len(model.edits) == 1  # a refused edit is not recorded


def test_read_model_imports_neither_onnx_nor_ml_dtypes():
    code = (f"import sys, ember; m = ember.Core().read_model({str(ppocr_cls_path())!r}); "
            "m.reshape([1, 3, 48, 192]); print(m, m.opset, m.metadata); "
            "print('onnx' in sys.modules, 'ml_dtypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_from_proto_and_a_proto_changed_in_place():
    proto = mlp()
    model = Model.from_proto(proto)
    assert model.is_parsed and model.changed_in_place() is None
    model.proto.doc_string = "changed"
    assert model.changed_in_place() is not None
    with pytest.raises(InvalidModelError):
        Model.from_proto(onnx.ModelProto())
