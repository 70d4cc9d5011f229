"""If, Loop and Scan for the TEMPLATE device: kernels that run compiled subgraph plans.

At compile time (``compiler._lower_control_flow``) each subgraph becomes a :class:`Plan` held in
the node's attributes, and the outer values the subgraphs read (ONNX lets a subgraph use any value
of an enclosing graph by name) are appended to the node's inputs. A subgraph plan reads its formal
inputs first (none for an If branch; iteration number, condition and loop-carried values for a
Loop body; states and one slice of each scanned input for a Scan body), then those captured
values, in the order the node lists them.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, register

#: Operators whose attributes hold subgraphs: never constant-folded, lowered by the compiler.
SUBGRAPH_OPERATORS = frozenset({"If", "Loop", "Scan"})


def _truth(value: np.ndarray | None, default: bool) -> bool:
    return default if value is None else bool(np.asarray(value).reshape(-1)[0])


@register("If")
def if_(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    branch = attrs["then_branch"] if _truth(inputs[0], False) else attrs["else_branch"]
    return branch.run(list(inputs[1:]))


@register("Loop")
def loop(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    body, carried_count = attrs["body"], attrs["carried"]
    trips = None if len(inputs) < 1 or inputs[0] is None else int(inputs[0].reshape(-1)[0])
    running = _truth(inputs[1] if len(inputs) > 1 else None, True)
    carried = list(inputs[2:2 + carried_count])
    captured = list(inputs[2 + carried_count:])
    scans: list[list[np.ndarray]] = [[] for _ in attrs["scan_dtypes"]]
    iteration = 0
    while running and (trips is None or iteration < trips):
        outputs = body.run([np.array(iteration, np.int64), np.array(running), *carried,
                            *captured])
        running = _truth(outputs[0], True)
        carried = outputs[1:1 + carried_count]
        for scan, value in zip(scans, outputs[1 + carried_count:], strict=True):
            scan.append(value)
        iteration += 1
    stacked = [np.stack(scan) if scan else np.zeros((0,), np.dtype(dtype))
               for scan, dtype in zip(scans, attrs["scan_dtypes"], strict=True)]
    return [*carried, *stacked]


@register("Scan")
def scan(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    body, states_count = attrs["body"], attrs["carried"]
    scanned_count = attrs["num_scan_inputs"]
    states = list(inputs[:states_count])
    scanned = list(inputs[states_count:states_count + scanned_count])
    captured = list(inputs[states_count + scanned_count:])
    axes = attrs.get("scan_input_axes") or [0] * scanned_count
    backwards = attrs.get("scan_input_directions") or [0] * scanned_count
    # Each scanned input with its scan axis first, reversed when scanned backwards.
    sequences = []
    for value, axis, backward in zip(scanned, axes, backwards, strict=True):
        moved = np.moveaxis(value, axis % value.ndim, 0)
        sequences.append(moved[::-1] if backward else moved)
    steps = sequences[0].shape[0] if sequences else 0
    outputs: list[list[np.ndarray]] = [[] for _ in attrs["scan_dtypes"]]
    for t in range(steps):
        results = body.run([*states, *(s[t] for s in sequences), *captured])
        states = results[:states_count]
        for collected, value in zip(outputs, results[states_count:], strict=True):
            collected.append(value)
    out_axes = attrs.get("scan_output_axes") or [0] * len(outputs)
    out_backwards = attrs.get("scan_output_directions") or [0] * len(outputs)
    stacked = []
    for collected, dtype, axis, backward in zip(outputs, attrs["scan_dtypes"], out_axes,
                                                out_backwards, strict=True):
        if not collected:
            stacked.append(np.zeros((0,), np.dtype(dtype)))
            continue
        value = np.stack(collected[::-1] if backward else collected)
        stacked.append(np.moveaxis(value, 0, axis % value.ndim))
    return [*states, *stacked]
