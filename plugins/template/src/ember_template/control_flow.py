"""If and Loop for the TEMPLATE device: kernels that run compiled subgraph plans.

At compile time (``compiler._lower_control_flow``) each subgraph becomes a :class:`Plan` held in
the node's attributes, and the outer values the subgraphs read (ONNX lets a subgraph use any value
of an enclosing graph by name) are appended to the node's inputs. A subgraph plan reads its formal
inputs first (none for an If branch; iteration number, condition and loop-carried values for a
Loop body), then those captured values, in the order the node lists them.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernels import Attrs, Inputs, register

#: Operators whose attributes hold subgraphs: never constant-folded, lowered by the compiler.
SUBGRAPH_OPERATORS = frozenset({"If", "Loop"})


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
