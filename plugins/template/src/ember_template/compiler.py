"""TEMPLATE's compile: ONNX graph in, execution plan out.

The passes are the ones any device compiler has, kept small enough to read in one sitting:

1. validate the model and check every operator is supported (with the node that is not);
2. infer shapes, so that ``Shape`` of a statically shaped value becomes a constant;
3. fold every node whose inputs are all constants;
4. fuse BatchNormalization into the Conv before it, and lay Gemm weights out as the kernel reads
   them (skipped with ``DISABLE_TRANSFORMATIONS``);
5. drop nodes no output depends on, number the values, and free each one after its last use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ember.plugin import (
    InvalidModelError,
    Model,
    Port,
    UnsupportedOperatorError,
    batchnorm_into_conv,
)
from ember_template.control_flow import SUBGRAPH_OPERATORS
from ember_template.kernels import CAST_TARGETS, KERNELS
from ember_template.plan import NO_SLOT, Plan, Step

_DEFAULT_DOMAINS = ("", "ai.onnx")
_TRANSPOSED = "::transposed"


def compile_plan(model: Model, device_name: str, *, transformations: bool = True) -> Plan:
    proto = model.proto
    _validate(proto, model, device_name)
    graph = onnx.shape_inference.infer_shapes(proto, strict_mode=False).graph
    _check_types(graph, device_name, {})
    return compile_graph(graph, model.opset, [p.name for p in model.inputs],
                         transformations=transformations, ports=(model.inputs, model.outputs),
                         weights_by_name=True)


def compile_graph(graph: onnx.GraphProto, opset: int, input_names: list[str], *,
                  transformations: bool, ports: tuple[list[Port], list[Port]] = ([], []),
                  weights_by_name: bool = False) -> Plan:
    """Passes 2 to 5 on one graph: the model's, or a subgraph of If or Loop (which reads its
    formal inputs, then the outer values it captures, in ``input_names``; see control_flow).
    ``weights_by_name``: the graph's initializers are the model file's (weightless exports)."""
    static_shapes = _static_shapes(graph)
    constants: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type in SUBGRAPH_OPERATORS:
            nodes.append(node)  # never folded: its subgraphs are compiled below
            continue
        attrs = decode_attributes(node)
        if _fold(node, attrs, constants, static_shapes, opset):
            continue
        nodes.append(node)

    # If and Loop: compile their subgraphs into plans; the outer values a subgraph reads become
    # extra inputs of the node, so that liveness and dead-code elimination see them.
    lowered: dict[int, dict[str, Any]] = {}
    for index, node in enumerate(nodes):
        if node.op_type in SUBGRAPH_OPERATORS:
            node, attrs = _lower_control_flow(node, opset, transformations)
            nodes[index] = node
            lowered[id(node)] = attrs

    if transformations:
        nodes = _fuse_batchnorm_into_conv(nodes, constants, graph)
    return _lay_out(nodes, lowered, constants, graph, input_names, ports, opset,
                    transformations, weights_by_name)


# -- 1. validation -----------------------------------------------------------------------------


def _validate(proto: onnx.ModelProto, model: Model, device_name: str) -> None:
    source = str(model.path) if model.path else model.friendly_name
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise InvalidModelError(source, str(exc).strip().splitlines()[0]) from exc
    for node in _all_nodes(proto.graph):
        if (node.domain not in _DEFAULT_DOMAINS or node.op_type not in KERNELS
                or _unsupported_use(node, model.opset)):
            raise UnsupportedOperatorError(device_name, node.op_type, node.name, node.domain)


#: Operators whose kernels compute with numpy's own types only: given bfloat16, a float8 or a 4-
#: or 2-bit integer (which other kernels pass through as ml_dtypes arrays), they are refused.
_NUMPY_TYPES_ONLY = frozenset({"QuantizeLinear", "DequantizeLinear"})


def _check_types(graph: onnx.GraphProto, device_name: str, outer: Mapping[str, int]) -> None:
    """Refuse the first node of ``_NUMPY_TYPES_ONLY`` that reads or writes a type numpy has no
    dtype for (as ONNX's shape inference finds the types)."""
    types = {**outer, **{v.name: v.type.tensor_type.elem_type
                         for v in [*graph.input, *graph.output, *graph.value_info]
                         if v.type.HasField("tensor_type")}}
    types.update({t.name: t.data_type for t in graph.initializer})
    for node in graph.node:
        for name in [*node.input, *node.output] if node.op_type in _NUMPY_TYPES_ONLY else []:
            kind = types.get(name, 0) if name else 0
            if kind and kind not in CAST_TARGETS:
                raise UnsupportedOperatorError(
                    device_name, node.op_type, node.name, node.domain,
                    f"{name!r} is {onnx.TensorProto.DataType.Name(kind)}, which numpy has no "
                    "dtype for")
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                _check_types(subgraph, device_name, types)


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """The graph's nodes and those of its subgraphs (If branches, Loop bodies), depth first."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                yield from _all_nodes(subgraph)


#: Outputs the kernels produce, for operators with optional extra outputs that they do not
#: (MaxPool's argmax, BatchNormalization's training statistics, Dropout's mask).
_MAX_OUTPUTS = {"MaxPool": 1, "BatchNormalization": 1, "Dropout": 1}


def _unsupported_use(node: onnx.NodeProto, opset: int) -> bool:
    """A supported operator used in a way the kernels do not implement, refused at compile."""
    if node.op_type == "Scan" and opset < 9:
        return True  # Scan-8's batch axis and sequence_lens: not implemented
    if sum(1 for name in node.output if name) > _MAX_OUTPUTS.get(node.op_type, len(node.output)):
        return True
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        return True  # training_mode given: inference only here
    if node.op_type == "Cast":
        to = decode_attributes(node).get("to")
        return isinstance(to, int) and to not in CAST_TARGETS
    return False


def decode_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        elif isinstance(value, list) and value and isinstance(value[0], onnx.TensorProto):
            value = [numpy_helper.to_array(v) for v in value]
        attrs[attr.name] = value
    if node.op_type == "Split" and "split" not in attrs and len(node.input) < 2:
        # An even Split into as many parts as the node has outputs: only the node knows how many.
        attrs.setdefault("num_outputs", len(node.output))
    return attrs


# -- 2 and 3. shapes and constant folding ------------------------------------------------------


def _static_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape") and all(
            d.HasField("dim_value") and d.dim_value > 0 for d in dims
        ):
            shapes[info.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _fold(node: onnx.NodeProto, attrs: dict[str, Any], constants: dict[str, np.ndarray],
          static_shapes: Mapping[str, tuple[int, ...]], opset: int) -> bool:
    """Evaluate a node now if its outputs do not depend on the model's inputs."""
    if node.op_type == "Shape" and node.input[0] in static_shapes:
        placeholder = np.empty(static_shapes[node.input[0]], dtype=np.uint8)
        inputs: list[np.ndarray | None] = [placeholder]
    elif all(name == "" or name in constants for name in node.input):
        inputs = [constants[name] if name else None for name in node.input]
    else:
        return False
    if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"):
        return False  # not deterministic: must run each time
    outputs = KERNELS[node.op_type](inputs, attrs, opset)
    for name, value in zip(node.output, outputs, strict=False):
        if name:
            constants[name] = np.asarray(value, order="C")  # ascontiguousarray would make 0-d 1-d
    return True


def _lower_control_flow(node: onnx.NodeProto, opset: int,
                        transformations: bool) -> tuple[onnx.NodeProto, dict[str, Any]]:
    """An If or Loop node with its subgraphs compiled to plans, and the outer values they read
    appended to its inputs (the kernels in control_flow pass them on to the subgraph plans)."""
    attrs = decode_attributes(node)
    graphs = {name: value for name, value in attrs.items() if isinstance(value, onnx.GraphProto)}
    captures: list[str] = []
    for graph in graphs.values():
        captures += [name for name in outer_names(graph) if name not in captures]
    for name, graph in graphs.items():
        formal = [value.name for value in graph.input]
        attrs[name] = compile_graph(graph, opset, formal + captures,
                                    transformations=transformations)
    if node.op_type in ("Loop", "Scan"):
        body = graphs["body"]
        # Loop's body reads the iteration number and the condition, then the carried values;
        # Scan's the carried states, then one slice of each scanned input.
        attrs["carried"] = (len(body.input) - 2 if node.op_type == "Loop"
                            else len(body.input) - attrs["num_scan_inputs"])
        first_scan = 1 + attrs["carried"] if node.op_type == "Loop" else attrs["carried"]
        # The dtypes of the scan outputs, for a loop that runs zero times.
        attrs["scan_dtypes"] = [
            np.dtype(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).str
            for v in body.output[first_scan:]]
    lowered = onnx.NodeProto()
    lowered.CopyFrom(node)
    lowered.input.extend(captures)
    return lowered, attrs


def outer_names(graph: onnx.GraphProto) -> list[str]:
    """The values a subgraph reads from enclosing graphs (nested subgraphs' included), in the
    order it first reads them."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    found: list[str] = []
    for node in graph.node:
        reads = list(node.input)
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                reads += outer_names(subgraph)
        found += [n for n in reads if n and n not in defined and n not in found]
        defined.update(node.output)
    found += [v.name for v in graph.output if v.name not in defined and v.name not in found]
    return found


# -- 4. transformations ------------------------------------------------------------------------


def _fuse_batchnorm_into_conv(nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray],
                              graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Conv -> BatchNormalization becomes one Conv with rescaled weights and bias."""
    consumers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    graph_outputs = {o.name for o in graph.output}
    producer = {out: node for node in nodes for out in node.output}
    fused: set[int] = set()
    for bn in nodes:
        conv = producer.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if (conv is None or conv.op_type != "Conv" or len(bn.output) != 1
                or consumers.get(conv.output[0]) != 1 or conv.output[0] in graph_outputs
                or not all(n in constants for n in [*conv.input[1:], *bn.input[1:]] if n)):
            continue
        bias = constants[conv.input[2]] if len(conv.input) > 2 and conv.input[2] else None
        new_weight, new_bias = batchnorm_into_conv(
            constants[conv.input[1]], bias, *(constants[n] for n in bn.input[1:5]),
            epsilon=decode_attributes(bn).get("epsilon", 1e-5))
        w_name, b_name = f"{conv.output[0]}::fused_weight", f"{conv.output[0]}::fused_bias"
        constants[w_name], constants[b_name] = new_weight, new_bias
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = bn.output[0]
        fused.add(id(bn))
    return [node for node in nodes if id(node) not in fused]


# -- 5. layout ---------------------------------------------------------------------------------


def _lay_out(nodes: list[onnx.NodeProto], lowered: Mapping[int, dict[str, Any]],
             constants: dict[str, np.ndarray], graph: onnx.GraphProto, input_names: list[str],
             ports: tuple[list[Port], list[Port]], opset: int, transformations: bool,
             weights_by_name: bool) -> Plan:
    wanted = {o.name for o in graph.output}
    live_nodes: list[onnx.NodeProto] = []
    for node in reversed(nodes):  # dead-code elimination, walking back from the outputs
        if any(o in wanted for o in node.output):
            live_nodes.append(node)
            wanted.update(n for n in node.input if n)
    live_nodes.reverse()

    node_attrs = [lowered.get(id(node)) or decode_attributes(node) for node in live_nodes]
    if transformations:
        node_attrs = [_pre_transpose_gemm_weight(node, attrs, constants) if node.op_type == "Gemm"
                      else attrs for node, attrs in zip(live_nodes, node_attrs, strict=True)]

    slot_of: dict[str, int] = {}

    def slot(name: str) -> int:
        return slot_of.setdefault(name, len(slot_of)) if name else NO_SLOT

    input_slots = [slot(name) for name in input_names]
    steps_io = [([slot(n) for n in node.input], [slot(n) for n in node.output])
                for node in live_nodes]
    output_slots = [slot(o.name) for o in graph.output]
    plan_constants = {index: np.asarray(constants[name], order="C")
                      for name, index in slot_of.items() if name in constants}

    # Free each intermediate after the step that reads it last (never inputs' or outputs' slots).
    keep = set(output_slots) | set(plan_constants)
    last_use = {s: i for i, (ins, _) in enumerate(steps_io) for s in ins
                if s not in keep and s != NO_SLOT}
    steps = [
        Step(node.op_type, node.name, tuple(ins), tuple(outs), attrs,
             tuple(sorted({s for s in ins if last_use.get(s) == i})))
        for i, (node, attrs, (ins, outs)) in enumerate(zip(live_nodes, node_attrs, steps_io,
                                                           strict=True))
    ]
    # Which constants are the model's weights (as they are, or transposed): a weightless export
    # stores where to find them instead of their bytes.
    sources = ({init.name: (init.name, "") for init in graph.initializer} if weights_by_name
               else {})
    sources.update({name: (name.removesuffix(_TRANSPOSED), "T") for name in constants
                    if name.endswith(_TRANSPOSED) and name.removesuffix(_TRANSPOSED) in sources})
    weight_names = {index: sources[name] for name, index in slot_of.items()
                    if name in sources and index in plan_constants}
    return Plan(opset, len(slot_of), list(ports[0]), list(ports[1]),
                input_slots, output_slots, plan_constants, steps, weight_names)


def _pre_transpose_gemm_weight(node: onnx.NodeProto, attrs: dict[str, Any],
                               constants: dict[str, np.ndarray]) -> dict[str, Any]:
    """Store a constant B of ``Gemm(transB=1)`` transposed, so that each run reads it in order."""
    weight_name = node.input[1]
    if not attrs.get("transB") or weight_name not in constants:
        return attrs
    transposed_name = weight_name + _TRANSPOSED
    constants[transposed_name] = np.ascontiguousarray(constants[weight_name].T)
    node.input[1] = transposed_name
    return {**attrs, "transB": 0}
