"""The conformance suite's model zoo: small models built here, and real ones from the package index.

Each :class:`ZooModel` names the operators it uses (``ops``; checked against the graph by the
suite), builds or finds its ONNX model, and makes seeded inputs. The real models are those the
benchmarks use, found inside installed wheels without importing them:

- PaddleOCR's text detector, recogniser and direction classifier, the files of
  ``rapidocr-onnxruntime`` 1.4.4 (:mod:`ember.testing.model_files` fetches them; ``make`` does);
- Silero VAD 6.2.3's two ONNX files (``silero_vad_op18_ifless.onnx``: an If on the sample rate;
  ``silero_vad_openvino_16k.onnx``: an LSTM), from ``silero-vad`` (``make`` installs it with
  ``--no-deps``).

A model whose files are absent is not in the zoo; :func:`absent_models` says which and how to
get them, and the suite prints that at the end of its run. Inputs are kept small (a 64x64 image
for the detector) so that slow reference devices finish in seconds. The built models are compared
with ``onnx.reference``; the real ones with onnxruntime when it is installed (``oracle``), as the
field runs them.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from ember.model.port import Port
from ember.testing import model_files, models

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo: where it comes from, the operators it uses, and its inputs."""

    name: str
    #: Operator types in the graph, subgraphs included ("domain::Op" outside the default domain).
    ops: frozenset[str]
    #: Returns the model: a path to an ONNX file, or serialized bytes.
    source: Callable[[], Path | bytes]
    #: Makes the inputs from the model's input ports.
    make_inputs: Callable[[Sequence[Port]], Feeds]
    origin: str = "built by ember.testing.zoo with onnx.helper"
    rtol: float = 1e-4
    atol: float = 1e-5
    tags: tuple[str, ...] = field(default=())
    #: Whose outputs the devices' are compared with: "onnx.reference" or "onnxruntime" (which
    #: falls back to onnx.reference where onnxruntime is not installed).
    oracle: str = "onnx.reference"

    def load(self) -> Path | bytes:
        return self.source()

    def proto(self) -> onnx.ModelProto:
        return _proto(self.name)

    def reference(self, ports: Sequence[Port]) -> tuple[Feeds, list[np.ndarray]]:
        """The inputs and ``onnx.reference``'s outputs for them (computed once per process)."""
        return _reference(self.name, tuple(ports))


def graph_operators(model: onnx.ModelProto) -> frozenset[str]:
    """Every operator type of a model, nested subgraphs (If, Loop, Scan) included."""
    found: set[str] = set()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            found.add(operator_key(node.domain, node.op_type))
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g)
                for subgraph in attribute.graphs:
                    walk(subgraph)

    walk(model.graph)
    return frozenset(found)


def operator_key(domain: str, op_type: str) -> str:
    """``"Relu"`` for the default domain, ``"com.example::Relu"`` for another one."""
    return op_type if domain in ("", "ai.onnx") else f"{domain}::{op_type}"


# -- inputs --------------------------------------------------------------------------------------


def _random(shapes: Mapping[str, tuple[int, ...]] | None = None, *, uniform: bool = False,
            seed: int = 0) -> Callable[[Sequence[Port]], Feeds]:
    """Seeded float inputs; ``shapes`` fixes the dynamic dimensions of named inputs."""

    def make(ports: Sequence[Port]) -> Feeds:
        rng = np.random.default_rng(seed)
        feeds = {}
        for port in ports:
            shape = (shapes or {}).get(port.name) or tuple(
                d if isinstance(d, int) else (2 if i == 0 else 16)
                for i, d in enumerate(port.shape))
            values = rng.random(shape) if uniform else rng.standard_normal(shape)
            feeds[port.name] = values.astype(port.dtype)
        return feeds

    return make


def _text_lines(ports: Sequence[Port]) -> Feeds:
    """A 64x64 page for the text detector: three lines of dark strokes on white, normalised as
    PaddleOCR does. Random pixels make it answer ~0 everywhere, which would compare nothing."""
    rng = np.random.default_rng(0)
    page = np.ones((64, 64))
    for row in (12, 30, 48):
        for column in range(6, 58, 4):
            height = int(rng.integers(4, 9))
            page[row - height // 2: row + height // 2, column:column + 2] = 0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    image = ((page[..., None] - mean) / std).transpose(2, 0, 1)[None]
    return {ports[0].name: image.astype(np.float32)}


def _silero_inputs(ports: Sequence[Port]) -> Feeds:
    """One chunk of audio at 16 kHz (512 samples, or what a static input port says) and a
    non-zero recurrent state, so that the state path is exercised too."""
    rng = np.random.default_rng(0)
    shapes = {port.name: port.shape for port in ports}
    samples = shapes["input"][1] if isinstance(shapes["input"][1], int) else 512
    feeds = {"input": (rng.standard_normal((1, samples)) * 0.1).astype(np.float32),
             "state": (rng.standard_normal((2, 1, 128)) * 0.1).astype(np.float32)}
    if "sr" in shapes:
        feeds["sr"] = np.array(16000, dtype=np.int64)
    return feeds


# -- models built here -------------------------------------------------------------------------


def attention_block(seed: int = 0, tokens: int = 8, width: int = 16, heads: int = 2) -> bytes:
    """A transformer encoder block: self-attention, LayerNorm spelt out, and an Erf GELU MLP."""
    rng = np.random.default_rng(seed)
    head = width // heads

    def weight(name: str, *shape: int) -> TensorProto:
        values = rng.standard_normal(shape) / np.sqrt(shape[0])
        return onnx.numpy_helper.from_array(values.astype(np.float32), name)

    def const(name: str, values: object, dtype: type = np.float32) -> TensorProto:
        return onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name)

    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "wq"], ["q"], name="query"), n("MatMul", ["x", "wk"], ["k"], name="key"),
        n("MatMul", ["x", "wv"], ["v"], name="value"),
        *[n("Reshape", [t, "heads_shape"], [f"{t}_heads"], name=f"split_{t}") for t in "qkv"],
        n("Transpose", ["q_heads"], ["qt"], perm=[0, 2, 1, 3], name="q_transpose"),
        n("Transpose", ["k_heads"], ["kt"], perm=[0, 2, 3, 1], name="k_transpose"),
        n("Transpose", ["v_heads"], ["vt"], perm=[0, 2, 1, 3], name="v_transpose"),
        n("MatMul", ["qt", "kt"], ["scores_raw"], name="scores"),
        n("Div", ["scores_raw", "sqrt_head"], ["scores_scaled"], name="scale_scores"),
        n("Softmax", ["scores_scaled"], ["weights"], axis=-1, name="attention_softmax"),
        n("MatMul", ["weights", "vt"], ["context_heads"], name="context"),
        n("Transpose", ["context_heads"], ["context_t"], perm=[0, 2, 1, 3], name="merge_t"),
        n("Reshape", ["context_t", "merged_shape"], ["context_merged"], name="merge_heads"),
        n("MatMul", ["context_merged", "wo"], ["attended"], name="attention_out"),
        n("Add", ["x", "attended"], ["residual"], name="residual_add"),
        n("ReduceMean", ["residual"], ["mean"], axes=[-1], keepdims=1, name="ln_mean"),
        n("Sub", ["residual", "mean"], ["centred"], name="ln_centre"),
        n("Pow", ["centred", "two"], ["squared"], name="ln_square"),
        n("ReduceMean", ["squared"], ["variance"], axes=[-1], keepdims=1,
          name="ln_variance"),
        n("Add", ["variance", "epsilon"], ["variance_eps"], name="ln_epsilon"),
        n("Sqrt", ["variance_eps"], ["deviation"], name="ln_sqrt"),
        n("Div", ["centred", "deviation"], ["normalised"], name="ln_divide"),
        n("MatMul", ["normalised", "w_up"], ["up"], name="mlp_up"),
        n("Div", ["up", "sqrt_two"], ["up_scaled"], name="gelu_scale"),
        n("Erf", ["up_scaled"], ["erf"], name="gelu_erf"),
        n("Add", ["erf", "one"], ["erf_plus_one"], name="gelu_shift"),
        n("Mul", ["up", "erf_plus_one"], ["gelu_twice"], name="gelu_product"),
        n("Mul", ["gelu_twice", "half"], ["gelu"], name="gelu_half"),
        n("MatMul", ["gelu", "w_down"], ["down"], name="mlp_down"),
        n("Add", ["normalised", "down"], ["y"], name="mlp_residual"),
    ]
    initializers = [
        weight("wq", width, width), weight("wk", width, width), weight("wv", width, width),
        weight("wo", width, width), weight("w_up", width, 2 * width),
        weight("w_down", 2 * width, width),
        const("heads_shape", [0, tokens, heads, head], np.int64),
        const("merged_shape", [0, tokens, width], np.int64),
        const("sqrt_head", np.sqrt(head)),
        const("two", 2.0), const("epsilon", 1e-5), const("sqrt_two", np.sqrt(2.0)),
        const("one", 1.0), const("half", 0.5),
    ]
    graph = helper.make_graph(
        nodes, "attention_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", tokens, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", tokens, width])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", models.OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# -- the real models, found in installed wheels without importing them --------------------------


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, or None when the package or file is absent."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / relative
        if path.is_file():
            return path
    return None


_RAPIDOCR = f"{model_files.PACKAGE} {model_files.VERSION}"
_PPOCR = {  # name -> (file, input shape, ops)
    "ppocr-cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192),
                  "Add BatchNormalization Cast Clip Concat Constant Conv Div GlobalAveragePool "
                  "HardSigmoid Identity MatMul MaxPool Mul Relu Reshape Shape Slice Softmax"),
    "ppocr-rec": ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 160),
                  "Add AveragePool BatchNormalization Cast Clip Concat Constant Conv Div "
                  "GlobalAveragePool HardSigmoid MatMul Mul Pow ReduceMean Relu Reshape Shape "
                  "Sigmoid Slice Softmax Sqrt Squeeze Sub Transpose"),
    "ppocr-det": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 64, 64),
                  "Add BatchNormalization Clip Concat Constant Conv ConvTranspose Div "
                  "GlobalAveragePool HardSigmoid Mul Relu Resize Sigmoid"),
}
_SILERO = {  # name -> (file, ops)
    "silero-vad": ("data/silero_vad_op18_ifless.onnx",
                   "Add Concat Conv Equal Gather Gemm If Mul Pad Pow ReduceMean Relu Reshape "
                   "Sigmoid Slice Split Sqrt Squeeze Tanh Unsqueeze"),
    "silero-vad-openvino": ("data/silero_vad_openvino_16k.onnx",
                            "Add Cast Concat Constant ConstantOfShape Conv Gather LSTM Pad Pow "
                            "ReduceMean Relu Reshape Sigmoid Slice Sqrt Squeeze Transpose "
                            "Unsqueeze"),
}


def _ops(names: str) -> frozenset[str]:
    return frozenset(names.split())


@functools.cache
def model_zoo() -> tuple[ZooModel, ...]:
    """The zoo on this machine: the built models, then each real model whose package is here."""
    zoo = [
        ZooModel("mlp", _ops("Gemm Relu MatMul Add Tanh Softmax"),
                 lambda: models.mlp().SerializeToString(), _random()),
        ZooModel("cnn", _ops("Conv BatchNormalization Relu Sigmoid Mul MaxPool AveragePool Concat "
                             "GlobalAveragePool Flatten Gemm"),
                 lambda: models.cnn().SerializeToString(), _random()),
        ZooModel("attention", _ops("MatMul Reshape Transpose Div Softmax Add ReduceMean Sub Pow "
                                   "Sqrt Erf Mul"),
                 attention_block, _random()),
    ]
    for name, (file_name, shape, ops) in _PPOCR.items():
        path = model_files.model_file(file_name)
        if path is not None:
            inputs = _text_lines if name == "ppocr-det" else _random({"x": shape}, uniform=True)
            zoo.append(ZooModel(name, _ops(ops), functools.partial(Path, path), inputs,
                                origin=_RAPIDOCR, tags=("real",), oracle="onnxruntime"))
    for name, (relative, ops) in _SILERO.items():
        path = model_files.model_file(relative.rsplit("/", 1)[-1])
        if path is not None:
            zoo.append(ZooModel(name, _ops(ops), functools.partial(Path, path), _silero_inputs,
                                origin="silero-vad 6.2.3's wheel", tags=("real",),
                                oracle="onnxruntime"))
    return tuple(zoo)


def absent_models() -> list[str]:
    """The real models not in the zoo on this machine, each with how to get it."""
    present = {m.name for m in model_zoo()}
    absent = [f"{name}: the files of {_RAPIDOCR} are absent; fetch them with "
              f"`{model_files.FETCH_COMMAND}`" for name in _PPOCR if name not in present]
    absent += [f"{name}: the files of silero-vad 6.2.3 are absent; fetch them with "
               f"`{model_files.FETCH_COMMAND}`" for name in _SILERO if name not in present]
    return absent


def zoo_model(name: str) -> ZooModel:
    for entry in model_zoo():
        if entry.name == name:
            return entry
    raise KeyError(f"no zoo model {name!r}; the zoo has {[m.name for m in model_zoo()]}")


@functools.cache
def _proto(name: str) -> onnx.ModelProto:
    source = zoo_model(name).load()
    return onnx.load(str(source)) if isinstance(source, Path) else onnx.load_from_string(source)


@functools.cache
def _reference(name: str, ports: tuple[Port, ...]) -> tuple[Feeds, list[np.ndarray]]:
    from ember.testing.reference import onnxruntime_outputs, reference_outputs

    entry = zoo_model(name)
    feeds = entry.make_inputs(ports)
    if entry.oracle == "onnxruntime" and oracle_of(entry) == "onnxruntime":
        return feeds, onnxruntime_outputs(entry.proto(), feeds)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # onnx.reference's overflow warnings in Sigmoid, Exp
        expected = reference_outputs(entry.proto(), feeds)
    return feeds, expected


def oracle_of(entry: ZooModel) -> str:
    """The oracle a model is actually compared with on this machine."""
    if entry.oracle == "onnxruntime" and importlib.util.find_spec("onnxruntime") is not None:
        return "onnxruntime"
    return "onnx.reference"
