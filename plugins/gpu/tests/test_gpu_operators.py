"""TEMPLATE's operator cases on the GPU device, against onnx.reference (onnxruntime where noted).

The cases (ember.testing.operator_cases) of one opset run as one model: one program per opset,
each case still its own test.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from ember.testing import operator_cases as cases
from ember_gpu.ops import SUPPORTED_OPS

PARAMS = {p.id: p for p in cases.CASES}


@pytest.fixture(scope="module")
def runs(core, gpu_device) -> dict[str, Any]:
    """For each case id: (inputs, first outputs, second outputs, inputs after), or the error."""
    by_opset: dict[int, list[Any]] = defaultdict(list)
    for index, param in enumerate(PARAMS.values()):
        by_opset[param.values[3]].append((index, param))
    results: dict[str, Any] = {}
    for opset, group in by_opset.items():
        model = cases.combined_model(
            [(f"c{i}_", p.values[0], p.values[1], p.values[2], p.values[4]) for i, p in group],
            opset)
        feeds = {f"c{i}_in{j}": x for i, p in group for j, x in enumerate(p.values[1])
                 if x is not None}
        before = {k: v.copy() for k, v in feeds.items()}
        try:
            compiled = core.compile_model(model.SerializeToString(), gpu_device)
            first, second = compiled(feeds), compiled(feeds)
        except Exception as exc:  # reported by every case of the group
            for _, p in group:
                results[p.id] = exc
            continue
        for i, p in group:
            names = [f"c{i}_out{k}" for k in range(p.values[4])]
            inputs_unchanged = all(np.array_equal(feeds[k], before[k])
                                   for k in feeds if k.startswith(f"c{i}_"))
            results[p.id] = ([first[n] for n in names], [second[n] for n in names],
                             inputs_unchanged)
    return results


@pytest.mark.parametrize("case_id", PARAMS)
def test_matches_onnx_reference(runs, case_id):
    op, inputs, attrs, opset, n_out, _, oracle = PARAMS[case_id].values
    result = runs[case_id]
    if isinstance(result, Exception):
        raise result
    got, again, inputs_unchanged = result
    expected = cases.run_oracle(cases.make_model(op, inputs, attrs, opset, n_out), inputs, oracle)
    for out, want in zip(got, expected[: len(got)], strict=True):
        assert out.dtype == want.dtype, (out.dtype, want.dtype)
        assert out.shape == want.shape, (out.shape, want.shape)
        if out.dtype.kind in "fc":
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(out, want)
    # Deterministic, and the inputs are left alone.
    assert [a.tobytes() for a in got] == [b.tobytes() for b in again]
    assert inputs_unchanged


def test_every_template_operator_is_supported_and_tested():
    assert not set(cases.REQUIRED_OPS) - SUPPORTED_OPS
    assert not set(cases.REQUIRED_OPS) - {p.values[0] for p in PARAMS.values()}


def test_supported_names_are_the_registry_and_the_expansions():
    """The names listed without importing any definition (what SUPPORTED_OPERATORS reports at
    every compile) are exactly the operators with device code, folding or expansion."""
    from ember_gpu import ops
    from ember_gpu.ops.registry import DEVICE_OPS

    assert frozenset(DEVICE_OPS) == ops.DEVICE_OP_NAMES
    assert not ops.HOST_ONLY_OPS & ops.DEVICE_OP_NAMES
    assert not ops.EXPANDED_OPS & (ops.DEVICE_OP_NAMES | ops.HOST_ONLY_OPS)
