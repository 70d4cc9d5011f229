"""Check every TEMPLATE kernel against onnx.reference.ReferenceEvaluator on one-node models."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from ember.testing.operator_cases import (
    CASES,
    REQUIRED_OPS,
    f,
    make_model,
    run_oracle,
)
from ember_template.kernels import KERNELS

PARAMS = ("op", "inputs", "attrs", "opset", "n_out", "kernel_attrs", "oracle")


def decode_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """Decode attributes the way the executor does (strings as str, tensors as ndarrays)."""
    result: dict[str, Any] = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode()
        result[attr.name] = value
    return result


def read_only(x: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return None
    y = np.frombuffer(np.ascontiguousarray(x).tobytes(), dtype=x.dtype).reshape(x.shape)
    assert not y.flags.writeable
    return y


@pytest.mark.parametrize(PARAMS, CASES)
def test_matches_onnx_reference(
    op: str,
    inputs: list[np.ndarray | None],
    attrs: dict[str, Any],
    opset: int,
    n_out: int,
    kernel_attrs: dict[str, Any],
    oracle: str,
) -> None:
    model = make_model(op, inputs, attrs, opset, n_out)
    expected = run_oracle(model, inputs, oracle)
    kernel_attrs = {**decode_attrs(model.graph.node[0]), **kernel_attrs}
    got = KERNELS[op](inputs, kernel_attrs, opset)
    assert len(got) >= 1
    for out, want in zip(got, expected[: len(got)], strict=True):
        assert isinstance(out, np.ndarray)
        assert out.dtype == want.dtype, (out.dtype, want.dtype)
        assert out.shape == want.shape, (out.shape, want.shape)
        if out.dtype.kind in "fc":
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize(PARAMS, CASES)
def test_read_only_inputs_and_determinism(
    op: str,
    inputs: list[np.ndarray | None],
    attrs: dict[str, Any],
    opset: int,
    n_out: int,
    kernel_attrs: dict[str, Any],
    oracle: str,
) -> None:
    frozen = [read_only(x) for x in inputs]
    before = [None if x is None else x.copy() for x in frozen]
    model = make_model(op, inputs, attrs, opset, n_out)
    kernel_attrs = {**decode_attrs(model.graph.node[0]), **kernel_attrs}
    first = KERNELS[op](frozen, kernel_attrs, opset)
    second = KERNELS[op](frozen, kernel_attrs, opset)
    for x, snapshot in zip(frozen, before, strict=True):
        if x is not None:
            np.testing.assert_array_equal(x, snapshot)
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def test_registry_covers_required_ops() -> None:
    assert not set(REQUIRED_OPS) - set(KERNELS)
    tested = {p.values[0] for p in CASES}
    assert not set(REQUIRED_OPS) - tested


def test_trailing_optional_inputs_may_be_absent_or_none() -> None:
    x = f(2, 3)
    a = KERNELS["Clip"]([x, None, None], {}, 13)[0]
    b = KERNELS["Clip"]([x], {}, 13)[0]
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, x)
    w = f(4, 3, 3, 3)
    with_none = KERNELS["Conv"]([f(1, 3, 5, 5), w, None], {}, 17)[0]
    assert with_none.shape == (1, 4, 3, 3) and with_none.dtype == np.float32


def test_conv_dynamic_batch_and_size() -> None:
    w, b = f(8, 3, 3, 3), f(8)
    attrs = {"pads": [1, 1, 1, 1], "strides": [2, 2]}
    for shape in [(1, 3, 48, 192), (3, 3, 17, 33)]:
        x = f(*shape)
        model = make_model("Conv", [x, w, b], attrs, 17, 1)
        (want,) = run_oracle(model, [x, w, b])
        got = KERNELS["Conv"]([x, w, b], attrs, 17)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
