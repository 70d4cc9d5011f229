"""Elementwise operators: the output element from the operands' elements, with broadcasting.

Each definition gives its result dtype and an OpenCL C expression over the operands (already
loaded into locals of their compute types). Float math keeps float32 (literals are exact
hexadecimal float32 values, and the program turns FP_CONTRACT off so that ``x * a + b`` rounds
twice, as numpy does). Integer division truncates toward zero, as ONNX asks, and never traps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember_gpu import dtypes
from ember_gpu.codegen import HELPERS, KernelWriter
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import (
    DeviceNode,
    ElementwiseOp,
    Inferred,
    Shape,
    broadcast_shapes,
    input_at,
)

Expression = Callable[[DeviceNode, Sequence[str], KernelWriter], str]

_SUFFIX = {"float": "f", "double": "d"}
for _ctype, _suffix in _SUFFIX.items():
    HELPERS[f"ember_sigmoid_{_suffix}"] = (
        f"inline {_ctype} ember_sigmoid_{_suffix}({_ctype} x) {{\n"
        f"  const {_ctype} e = exp(-fabs(x));\n"  # never overflows
        f"  return x >= 0 ? 1 / (1 + e) : e / (1 + e);\n}}\n")
    HELPERS[f"ember_hard_sigmoid_{_suffix}"] = (
        f"inline {_ctype} ember_hard_sigmoid_{_suffix}({_ctype} x, {_ctype} a, {_ctype} b) {{\n"
        f"  return fmin(fmax(x * a + b, ({_ctype})0), ({_ctype})1);\n}}\n")
for _ctype in ("long", "int", "short", "char", "ulong", "uint", "ushort", "uchar"):
    signed = not _ctype.startswith("u")
    HELPERS[f"ember_div_{_ctype}"] = (  # no SIGFPE on a zero divisor or MIN / -1
        f"inline {_ctype} ember_div_{_ctype}({_ctype} a, {_ctype} b) {{\n"
        + ("  if (b == -1) return -a;\n" if signed else "")
        + "  return b == 0 ? 0 : a / b;\n}\n")
    HELPERS[f"ember_pow_{_ctype}"] = (
        f"inline {_ctype} ember_pow_{_ctype}({_ctype} a, long b) {{\n"
        f"  {_ctype} r = 1;\n  for (long i = 0; i < b; ++i) r *= a;\n  return r;\n}}\n")


def _ctype(value: Value | None) -> str:
    assert value is not None
    return dtypes.compute_type(value.dtype)


def _float_suffix(dn: DeviceNode) -> str:
    return _SUFFIX[_ctype(dn.outputs[0])]


def _lit(dn: DeviceNode, value: float) -> str:
    return dtypes.literal(value, dn.outputs[0].dtype)


class Elementwise(ElementwiseOp):
    """A definition from an expression builder and a rule for the result dtype."""

    def __init__(self, expression: Expression, result: str = "same",
                 float_only: bool = False) -> None:
        self._expression = expression
        self._result = result  # "same" (as input 0), "bool", "second" (as input 1), "cast"
        self.float_only = float_only

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        present = [v for v in inputs if v is not None]
        if node.op_type == "Expand":
            target = tuple(int(d) for d in inputs[1].host.reshape(-1))  # type: ignore[union-attr]
            shape = broadcast_shapes(present[0].shape, target)
        elif node.op_type == "BatchNormalization":
            shape = present[0].shape
        else:
            shape = broadcast_shapes(*[v.shape for v in present])
        if self._result == "bool":
            dtype = np.dtype(np.bool_)
        elif self._result == "second":
            dtype = present[1].dtype
        elif self._result == "cast":
            dtype = _cast_target(node)
        else:
            dtype = present[0].dtype
        return Inferred([shape], [dtype])

    def operand_shapes(self, dn: DeviceNode) -> list[Shape | None]:
        op = dn.node.op_type
        if op == "Expand":
            return [dn.inputs[0].shape, None]  # type: ignore[union-attr]
        if op == "BatchNormalization":  # per-channel parameters along axis 1
            rank = len(dn.outputs[0].shape)
            return [None if v is None else v.shape if i == 0 else (v.shape[0],) + (1,) * (rank - 2)
                    for i, v in enumerate(dn.inputs[:5])]
        return super().operand_shapes(dn)

    def expression(self, dn: DeviceNode, operands: Sequence[str | None],
                   kw: KernelWriter) -> str:
        return self._expression(dn, operands, kw)  # type: ignore[arg-type]


def _cast_target(node: Node) -> np.dtype:
    from onnx import TensorProto, helper

    to = node.attrs["to"]
    if isinstance(to, str):  # Cast-1 named the type ("FLOAT")
        to = TensorProto.DataType.Value(to)
    return np.dtype(helper.tensor_dtype_to_np_dtype(to))


def _unary(template: str) -> Expression:
    return lambda dn, x, kw: template.format(x[0])


def _binary(symbol: str) -> Expression:
    return lambda dn, x, kw: f"({x[0]} {symbol} {x[1]})"


def _div(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    ctype = _ctype(dn.outputs[0])
    if ctype in _SUFFIX:
        return f"({x[0]} / {x[1]})"
    return f"{kw.use(f'ember_div_{ctype}')}({x[0]}, {x[1]})"


def _pow(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    ctype = _ctype(dn.outputs[0])
    if ctype in _SUFFIX:
        return f"pow({x[0]}, ({ctype})({x[1]}))"
    return f"{kw.use(f'ember_pow_{ctype}')}({x[0]}, (long)({x[1]}))"


def _fold(function_float: str, function_int: str) -> Expression:
    def build(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
        function = function_float if _ctype(dn.outputs[0]) in _SUFFIX else function_int
        code = x[0]
        for operand in x[1:]:
            code = f"{function}({code}, {operand})"
        return code

    return build


def _relu(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    return f"({x[0]} < 0 ? {_lit(dn, 0)} : {x[0]})"


def _leaky_relu(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    return f"({x[0]} >= 0 ? {x[0]} : {x[0]} * {_lit(dn, dn.node.attrs.get('alpha', 0.01))})"


def _sigmoid(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    return f"{kw.use('ember_sigmoid_' + _float_suffix(dn))}({x[0]})"


def _hard_sigmoid(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    alpha, beta = dn.node.attrs.get("alpha", 0.2), dn.node.attrs.get("beta", 0.5)
    helper = kw.use("ember_hard_sigmoid_" + _float_suffix(dn))
    return f"{helper}({x[0]}, {_lit(dn, alpha)}, {_lit(dn, beta)})"


def _hard_swish(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    helper = kw.use("ember_hard_sigmoid_" + _float_suffix(dn))
    return f"({x[0]} * {helper}({x[0]}, {_lit(dn, 1 / 6)}, {_lit(dn, 0.5)}))"


def _abs(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    return f"({x[0]} < 0 ? -{x[0]} : {x[0]})"


def _clip(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    floating = _ctype(dn.outputs[0]) in _SUFFIX
    low_fn, high_fn = ("fmax", "fmin") if floating else ("max", "min")
    if dn.extra.get("opset", 13) < 11:
        low, high = dn.node.attrs.get("min"), dn.node.attrs.get("max")
        low = None if low is None else _lit(dn, low)
        high = None if high is None else _lit(dn, high)
    else:
        low = x[1] if len(x) > 1 else None
        high = x[2] if len(x) > 2 else None
    code = x[0]
    if low is not None:
        code = f"{low_fn}({code}, {low})"
    if high is not None:
        code = f"{high_fn}({code}, {high})"
    return code


def _cast(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    target = dn.outputs[0].dtype
    if target == np.bool_:
        return f"({x[0]} != 0)"
    return f"(({dtypes.compute_type(target)})({x[0]}))"


def _batch_normalization(dn: DeviceNode, x: Sequence[str], kw: KernelWriter) -> str:
    epsilon = _lit(dn, dn.node.attrs.get("epsilon", 1e-5))
    return f"(({x[0]} - {x[3]}) / sqrt({x[4]} + {epsilon}) * {x[1]} + {x[2]})"


ELEMENTWISE_OPS: dict[str, Elementwise] = {
    "Relu": Elementwise(_relu),
    "LeakyRelu": Elementwise(_leaky_relu, float_only=True),
    "Sigmoid": Elementwise(_sigmoid, float_only=True),
    "HardSigmoid": Elementwise(_hard_sigmoid, float_only=True),
    "HardSwish": Elementwise(_hard_swish, float_only=True),
    "Tanh": Elementwise(_unary("tanh({})"), float_only=True),
    "Sqrt": Elementwise(_unary("sqrt({})"), float_only=True),
    "Exp": Elementwise(_unary("exp({})"), float_only=True),
    "Log": Elementwise(_unary("log({})"), float_only=True),
    "Erf": Elementwise(_unary("erf({})"), float_only=True),
    "Neg": Elementwise(_unary("(-{})")),
    "Abs": Elementwise(_abs),
    "Not": Elementwise(_unary("(!{})"), result="bool"),
    "Add": Elementwise(_binary("+")),
    "Sub": Elementwise(_binary("-")),
    "Mul": Elementwise(_binary("*")),
    "Div": Elementwise(_div),
    "Pow": Elementwise(_pow),
    "Min": Elementwise(_fold("fmin", "min")),
    "Max": Elementwise(_fold("fmax", "max")),
    "Equal": Elementwise(_binary("=="), result="bool"),
    "Less": Elementwise(_binary("<"), result="bool"),
    "Greater": Elementwise(_binary(">"), result="bool"),
    "Where": Elementwise(lambda dn, x, kw: f"({x[0]} ? {x[1]} : {x[2]})", result="second"),
    "Clip": Elementwise(_clip),
    "Cast": Elementwise(_cast, result="cast"),
    "Expand": Elementwise(lambda dn, x, kw: x[0]),
    "BatchNormalization": Elementwise(_batch_normalization, float_only=True),
}


def operand_values(dn: DeviceNode) -> list[Value | None]:
    """The operands the expression reads (Expand's shape and absent inputs excluded)."""
    if dn.node.op_type == "Expand":
        return [dn.inputs[0]]
    if dn.node.op_type == "BatchNormalization":
        return list(dn.inputs[:5])
    return [input_at(dn.inputs, i) for i in range(len(dn.inputs))]
