"""The OPENVINO device beyond the conformance suite: its precision, its properties as OpenVINO
resolved them, its payload read back from forged bytes, its lazy import, and the alias that
moves an unchanged CPU application onto it."""

import json
import random
import struct
import subprocess
import sys

import numpy as np
import openvino as ov
import pytest

import ember
from ember.errors import BlobFormatError, PropertyValueError
from ember.plugin import read_frame, write_frame
from ember.testing import mlp, ppocr_cls_path, random_inputs
from ember.testing.models import PPOCR_CLS_INPUT_SHAPE
from ember_openvino import payload, plugin

CONFIG = dict(plugin.CONFIG_DEFAULTS)


@pytest.fixture(scope="module")
def core():
    return ember.Core()


@pytest.fixture(scope="module")
def cls(core):
    """PaddleOCR's classifier compiled once for the module's tests."""
    return core.compile_model(ppocr_cls_path(), "OPENVINO")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random(PPOCR_CLS_INPUT_SHAPE, dtype=np.float32)


@pytest.fixture(scope="module")
def exported(cls):
    return plugin.export_model(compiled_model=cls.device_model, device_name="OPENVINO",
                               config=CONFIG)


def test_f32_by_default_whatever_openvino_would_choose(cls, image):
    """OpenVINO's own default on a bf16-capable CPU is bf16; Ember's is f32, set explicitly, so
    the results equal OpenVINO's at an explicit f32 bit for bit."""
    assert cls.get_property("INFERENCE_PRECISION_HINT") == "f32"
    native = ov.Core().compile_model(str(ppocr_cls_path()), "CPU",
                                     {"INFERENCE_PRECISION_HINT": "f32"})
    assert cls(image)[0].tobytes() == native(image)[0].tobytes()


def test_bf16_when_asked(core, cls, image):
    compiled = core.compile_model(ppocr_cls_path(), "OPENVINO",
                                  {"INFERENCE_PRECISION_HINT": "bf16"})
    capable = "BF16" in core.get_property("OPENVINO", "OPTIMIZATION_CAPABILITIES")
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ("bf16" if capable else "f32")
    np.testing.assert_allclose(compiled(image)[0], cls(image)[0], atol=0.1)  # bf16: ~3 digits


def test_streams_and_threads_are_openvinos(core):
    compiled = core.compile_model(mlp().SerializeToString(), "OPENVINO",
                                  {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2,
                                   "INFERENCE_NUM_THREADS": 2})
    assert compiled.get_property("NUM_STREAMS") == 2
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") >= 2
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 2
    queue = ember.AsyncInferQueue(compiled)
    inputs = random_inputs(compiled.inputs, batch=3)
    expected = compiled(inputs)[0]
    for _ in range(8):
        queue.start_async(inputs)
    queue.wait_all()
    assert np.array_equal(queue[0].get_output_tensor(0).data, expected)


@pytest.mark.parametrize("config", [{"INFERENCE_PRECISION_HINT": "i8"}, {"NUM_STREAMS": 0},
                                    {"INFERENCE_NUM_THREADS": -1}])
def test_values_openvino_cannot_take_are_refused(core, config):
    with pytest.raises(PropertyValueError):
        core.compile_model(mlp().SerializeToString(), "OPENVINO", config)


def test_export_import_is_bitwise_identical(core, cls, image):
    imported = core.import_model(cls.export_model(), "OPENVINO")
    assert imported(image)[0].tobytes() == cls(image)[0].tobytes()


def _import(data):
    return plugin.import_model(data=data, device_name="OPENVINO", config=CONFIG)


_TRAILER = struct.Struct("<8sIII8s")  # the plugin framing's trailer: kind, version, flags, n
_ENTRY = struct.Struct("<QQ")  # a section's offset and length


def _sections(data):
    """(ports' bytes, OpenVINO's blob, where the section table starts) of a payload."""
    frame = read_frame(data, payload.KIND, payload.FORMAT_VERSION, sections=2,
                       known_flags=1)
    return bytes(frame.sections[0]), bytes(frame.sections[1]), (
        len(data) - _TRAILER.size - 2 * _ENTRY.size)


def test_forged_payloads_give_a_model_or_a_blob_format_error(exported):
    """Every byte of a payload read back is untrusted: truncations, flipped bits in the frame
    and the ports, section lengths that lie, and garbage in an intact frame."""
    ports, blob, table = _sections(exported)
    kind, version = payload.KIND, payload.FORMAT_VERSION
    forged = [b"", exported[:5], exported[:len(ports)], exported[:-1], exported[1:],
              b"\0" * 64, kind + b"\xff" * 40, exported[:table]]
    rng = random.Random(0)
    framing = [*range(len(ports)), *range(table, len(exported))]
    for _ in range(60):  # bit flips where the ports and the framing are
        data = bytearray(exported)
        data[rng.choice(framing)] ^= 1 << rng.randrange(8)
        forged.append(bytes(data))
    for index in range(2):  # a section's offset or length lies
        offset, length = _ENTRY.unpack_from(exported, table + index * _ENTRY.size)
        for lie in ((offset, length - 1), (offset, length + 1), (offset + 1, length),
                    (offset, (1 << 64) - 1), ((1 << 63), length)):
            data = bytearray(exported)
            _ENTRY.pack_into(data, table + index * _ENTRY.size, *lie)
            forged.append(bytes(data))
    # an intact frame around a blob OpenVINO refuses, broken ports, JSON nested past Python's
    # recursion limit, no ports, one port twice
    forged.append(write_frame(kind, version, [ports, b"not OpenVINO's blob" * 50]))
    forged.append(write_frame(kind, version, [ports[:-1] + b"[", blob]))
    forged.append(write_frame(kind, version, [b"[" * 100_000, blob]))
    forged.append(write_frame(kind, version, [b"{}", blob]))
    forged.append(write_frame(kind, version, [b"", b""]))
    twice = json.loads(ports)
    twice["inputs"] = twice["inputs"] * 2
    forged.append(write_frame(kind, version, [json.dumps(twice).encode(), blob]))
    forged.append(write_frame(kind, version, [ports, blob], flags=2))  # an unknown flag
    forged.append(write_frame(kind, version + 1, [ports, blob]))
    for data in forged:
        try:
            model = _import(data)
        except BlobFormatError:
            continue
        assert isinstance(model, ember.DeviceModel)


def test_a_payload_spliced_from_two_models_is_refused(core, exported):
    other = core.compile_model(mlp().SerializeToString(), "OPENVINO")
    other_payload = plugin.export_model(compiled_model=other.device_model,
                                        device_name="OPENVINO", config=CONFIG)
    cls_ports, _, _ = _sections(exported)
    _, mlp_blob, _ = _sections(other_payload)
    spliced = write_frame(payload.KIND, payload.FORMAT_VERSION, [cls_ports, mlp_blob])
    with pytest.raises(BlobFormatError, match="damaged OPENVINO payload"):
        _import(spliced)


def test_encrypted_payloads_hide_openvinos_blob(cls, image):
    def encrypt(data):
        return bytes(b ^ 0x5A for b in data)

    compiled = cls.device_model
    plain = payload.loads(plugin.export_model(compiled_model=compiled, device_name="OPENVINO",
                                              config=CONFIG)).blob
    data = payload.dumps(compiled.inputs, compiled.outputs, bytes(plain), encrypt)
    assert bytes(plain[:4096]) not in data
    with pytest.raises(BlobFormatError, match="encrypted"):
        payload.loads(data)
    assert bytes(payload.loads(data, encrypt).blob) == bytes(plain)


def test_creating_a_core_does_not_import_openvino():
    code = ("import sys, ember; core = ember.Core(); core.available_devices; "
            "core.get_property('OPENVINO', 'FULL_DEVICE_NAME'); print('openvino' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_warm_start_loads_only_openvinos_bindings(tmp_path):
    """A start on OPENVINO loads the bindings module alone: the ``openvino`` package's own
    ``__init__`` (its model converter, its telemetry) is not run; an ``import openvino`` after it
    runs as usual and shares the same classes. Neither start imports onnx (the cold one checks
    every node from the model's bytes): its import would cost most of a second."""
    code = ("import sys, numpy as np, ember\n"
            f"path = {str(ppocr_cls_path())!r}\n"
            "core = ember.Core()\n"
            f"core.set_property({{'CACHE_DIR': {str(tmp_path)!r}}})\n"
            "compiled = core.compile_model(path, 'OPENVINO')\n"
            "result = compiled(np.ones((1, 3, 48, 192), np.float32))[0]\n"
            "loaded = sorted(n for n in sys.modules if n.split('.')[0] in ('onnx', 'ml_dtypes')\n"
            "                or n.split('.')[0] == 'openvino'\n"
            "                and not n.startswith('openvino._pyopenvino'))\n"
            "import openvino\n"
            "same = openvino.Tensor is sys.modules['openvino._pyopenvino'].Tensor\n"
            "again = openvino.Core().compile_model(path, 'CPU',\n"
            "    {'INFERENCE_PRECISION_HINT': 'f32'})(np.ones((1, 3, 48, 192), np.float32))[0]\n"
            "print(loaded, same, compiled.get_property('LOADED_FROM_CACHE'),\n"
            "      result.tobytes() == again.tobytes())")
    for cached in ("False", "True"):  # a cold start, then a warm one
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.split() == ["[]", "True", cached, "True"]


def test_an_unchanged_cpu_application_runs_on_openvino_by_configuration(monkeypatch, cls, image):
    monkeypatch.setenv("EMBER_DEVICE_ALIASES", "CPU=OPENVINO")
    compiled = ember.Core().compile_model(ppocr_cls_path(), "CPU")
    assert compiled.get_property("EXECUTION_DEVICES") == ["OPENVINO"]
    assert compiled(image)[0].tobytes() == cls(image)[0].tobytes()


def _graph(nodes, inputs, outputs, initializers=()):
    from onnx import TensorProto, helper

    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    results = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs]
    graph = helper.make_graph(nodes, "g", values, results, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


def test_what_openvino_would_run_wrongly_is_refused_at_compile(core):
    from onnx import helper

    model = _graph([helper.make_node("Relu", ["x"], ["r"], name="first"),
                    helper.make_node("Resize", ["r", "", "scales"], ["y"], name="cubic_resize",
                                     mode="cubic")],
                   [("x", [1, 1, 4, 4]), ("scales", [4])], [("y", None)])
    with pytest.raises(ember.errors.UnsupportedOperatorError) as error:
        core.compile_model(model, "OPENVINO")
    assert (error.value.op_type, error.value.node_name) == ("Resize", "cubic_resize")
    assert "OpenVINO" in error.value.reason


def test_inputs_openvino_drops_are_matched_by_name(core):
    """OpenVINO drops an input the graph does not read; the inputs after it move up among
    OpenVINO's, so ports are matched by name, never by position."""
    from onnx import helper

    model = _graph([helper.make_node("Sub", ["a", "b"], ["y"], name="sub")],
                   [("unused", [2]), ("a", [2]), ("b", [2])], [("y", [2])])
    compiled = core.compile_model(model, "OPENVINO")
    assert len(compiled.device_model.compiled.inputs) == 2
    feeds = {"unused": np.full(2, 100, np.float32), "a": np.full(2, 5, np.float32),
             "b": np.full(2, 2, np.float32)}
    assert compiled(feeds)[0].tolist() == [3.0, 3.0]


def _resolved(compiled):
    """Every property an OpenVINO compiled model reports, as text."""
    values = {}
    for key in compiled.get_property("SUPPORTED_PROPERTIES"):
        if key != "SUPPORTED_PROPERTIES":
            try:
                values[key] = str(compiled.get_property(key))
            except RuntimeError:  # listed but not readable on this compiled model
                continue
    return values


def test_default_compile_and_import_resolve_as_native_openvino_f32(cls, exported):
    """By default the device runs what OpenVINO's own ``compile_model(path, "CPU",
    {"INFERENCE_PRECISION_HINT": "f32"})`` runs: the same streams, threads, hint, scheduling and
    pinning, compiled or imported from its cache, so its latency is OpenVINO's plus Ember's
    call path, nothing a property costs."""
    native = _resolved(ov.Core().compile_model(str(ppocr_cls_path()), "CPU",
                                               {"INFERENCE_PRECISION_HINT": "f32"}))
    assert native["PERFORMANCE_HINT"] == "LATENCY"
    imported = plugin.import_model(data=exported, device_name="OPENVINO", config=CONFIG)
    for compiled in (cls.device_model.compiled, imported.compiled):
        ours = _resolved(compiled)
        assert {k: v for k, v in ours.items() if native.get(k) != v} == {}
        assert set(ours) == set(native)


def test_openvinos_own_devices_are_named_after_the_dot(core, cls, image):
    """``OPENVINO.<name>`` is OpenVINO's device ``<name>``, listed as OpenVINO reports it (this
    machine has OpenVINO's CPU alone); a name OpenVINO does not report is refused, never served
    by ``OPENVINO``."""
    from ember.errors import UnknownDeviceError
    from ember_openvino import runtime

    assert core.available_devices.count("OPENVINO") == 1
    assert [d for d in core.available_devices if d.startswith("OPENVINO.")] == [
        f"OPENVINO.{name}" for name in ov.Core().available_devices]
    compiled = core.compile_model(ppocr_cls_path(), "OPENVINO.CPU")
    assert compiled.get_property("EXECUTION_DEVICES") == ["OPENVINO.CPU"]
    assert compiled(image)[0].tobytes() == cls(image)[0].tobytes()
    assert core.get_property("OPENVINO.CPU", "FULL_DEVICE_NAME") == \
        core.get_property("OPENVINO", "FULL_DEVICE_NAME")
    absent = next(n for n in ("GPU", "NPU", "GPU.1") if n not in runtime.devices())
    with pytest.raises(UnknownDeviceError, match=f"OPENVINO.{absent}"):
        core.compile_model(ppocr_cls_path(), f"OPENVINO.{absent}")


def test_openvino_cpu_goes_through_the_cache(tmp_path, image):
    core = ember.Core()
    core.set_property({"CACHE_DIR": str(tmp_path)})
    first = core.compile_model(ppocr_cls_path(), "OPENVINO.CPU")
    again = ember.Core()
    again.set_property({"CACHE_DIR": str(tmp_path)})
    warm = again.compile_model(ppocr_cls_path(), "OPENVINO.CPU")
    assert warm.get_property("LOADED_FROM_CACHE") and not first.get_property("LOADED_FROM_CACHE")
    assert warm(image)[0].tobytes() == first(image)[0].tobytes()


def test_auto_measures_one_device_once_whatever_its_names(core):
    """``OPENVINO`` and ``OPENVINO.CPU`` are one device: AUTO's candidates hold it once."""
    from ember.runtime import auto

    candidates = auto._candidates(core, "")
    assert "OPENVINO" in candidates and "OPENVINO.CPU" not in candidates
