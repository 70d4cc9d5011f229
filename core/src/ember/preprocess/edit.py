"""``PrePostProcessor.build``: one recorded edit holding every input's and output's steps.

The edit's parameters (what the cache key covers) are the steps as built graphs in canonical
JSON (:mod:`ember.model.graph_recipe`): the same preprocessing built at every start keys the same,
so a cached compile needs neither onnx nor the edited graph. ``apply`` writes the operators into the
ONNX graph; ``ports`` gives the new ports from the built nodes alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.model.graph import Node, Output
from ember.model.graph_recipe import describe
from ember.model.model_edits import Edit
from ember.model.port import Port

if TYPE_CHECKING:
    import onnx

    from ember.model.model import Model
    from ember.preprocess.info import InputInfo, OutputInfo

#: Suffix of the internal names the original inputs and outputs get inside the edited graph.
_INNER = "__ember_pp"


class PreprocessEdit(Edit):
    """Preprocessing of some inputs and postprocessing of some outputs of a model."""

    kind = "preprocess"

    def __init__(self, inputs: list[tuple[str, Node, Output]],
                 outputs: list[tuple[str, Node, Output]]) -> None:
        self.inputs = inputs  # (model input name, new parameter, value the model input becomes)
        self.outputs = outputs  # (model output name, stand-in for it, value the app gets)

    def params(self) -> dict[str, Any]:
        return {
            "inputs": [{"name": name, "graph": describe([value], {param.id: "tensor"})}
                       for name, param, value in self.inputs],
            "outputs": [{"name": name, "graph": describe([value], {stand_in.id: "model"})}
                        for name, stand_in, value in self.outputs],
        }

    def ports(self, inputs: list[Port], outputs: list[Port]) -> tuple[list[Port], list[Port]]:
        new_in = {name: param.out[0] for name, param, _ in self.inputs}
        new_out = {name: value.node.out[value.index] for name, _, value in self.outputs}

        def replaced(ports: list[Port], new: dict[str, Any]) -> list[Port]:
            result = []
            for port in ports:
                if port.name in new:
                    dtype, shape = new[port.name]
                    shape = tuple(None for _ in port.shape) if shape is None else tuple(shape)
                    port = Port(port.name, shape, dtype, port.index)
                result.append(port)
            return result

        return replaced(inputs, new_in), replaced(outputs, new_out)

    def apply(self, proto: onnx.ModelProto) -> None:
        from ember.model.graph_onnx import Emitter, value_info

        graph = proto.graph
        opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                     1)
        taken = _all_names(graph)
        for name, param, value in self.inputs:
            inner = _unused(f"{name}{_INNER}", taken)
            _rename(graph, name, inner, outputs_too=False)
            emitter = Emitter(opset, f"pp_{name}_", {param.output(0): name}, taken)
            emitter.add("Identity", [emitter.name_of(value)], [inner])
            taken |= emitter.taken
            position = next(i for i, v in enumerate(graph.input) if v.name == name)
            dtype, shape = param.out[0]
            graph.input[position].CopyFrom(value_info(name, dtype, shape))
            _prepend(graph, emitter.nodes)
        for name, stand_in, value in self.outputs:
            inner = _unused(f"{name}{_INNER}", taken)
            _rename(graph, name, inner, outputs_too=True)
            emitter = Emitter(opset, f"pp_{name}_", {stand_in.output(0): inner}, taken)
            emitter.add("Identity", [emitter.name_of(value)], [name])
            taken |= emitter.taken
            graph.node.extend(emitter.nodes)
            position = next(i for i, v in enumerate(graph.output) if v.name == name)
            dtype, shape = value.node.out[value.index]
            graph.output[position].CopyFrom(value_info(name, dtype, shape))
        del graph.value_info[:]  # intermediate shapes may have changed with the inputs


def _unused(name: str, taken: set[str]) -> str:
    """``name``, or with a number added if the graph has it (a model preprocessed twice)."""
    candidate, count = name, 0
    while candidate in taken:
        count += 1
        candidate = f"{name}{count}"
    taken.add(candidate)
    return candidate


def _prepend(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    # insert moves pointers; clearing and extending would copy every node (and its weights)
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in (*graph.input, *graph.output, *graph.initializer)}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def _rename(graph: onnx.GraphProto, old: str, new: str, *, outputs_too: bool) -> None:
    """Every use of value ``old`` (also inside subgraphs, which see outer values) becomes
    ``new``; with ``outputs_too`` the node producing it too."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        if outputs_too:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
        for attribute in node.attribute:
            for sub in (*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs):
                _rename(sub, old, new, outputs_too=False)


def build(model: Model, inputs: list[InputInfo], outputs: list[OutputInfo]) -> Model:
    """Build the chains, record them on ``model`` as one edit, give the ports their layouts."""
    from ember import layout_helpers
    from ember.preprocess.chain import input_chain, output_chain

    edit_inputs, edit_outputs, layouts = [], [], {}
    for info in inputs:
        param, value, layout = input_chain(info)
        if value.node is not param or param.out[0] != (info.port.dtype, tuple(info.port.shape)):
            edit_inputs.append((info.port.name, param, value))
        if layout is not None:
            layouts[("in", info.port.name)] = layout
    for out in outputs:
        stand_in, value, layout = output_chain(out)
        if value.node is not stand_in:
            edit_outputs.append((out.port.name, stand_in, value))
        if layout is not None:
            layouts[("out", out.port.name)] = layout
    if edit_inputs or edit_outputs:
        model._record(PreprocessEdit(edit_inputs, edit_outputs))
    for (side, name), layout in layouts.items():
        ports = model.inputs if side == "in" else model.outputs
        for port in ports:
            if port.name == name:
                layout_helpers.set_layout(port, layout)
    return model
