"""MatMul (numpy semantics: 1-D operands, broadcast batch dimensions) and Gemm.

One work-item per output element runs the dot product over K; operands are read in place with
literal strides, so transposed Gemm operands cost nothing to lay out.
"""

from __future__ import annotations

from collections.abc import Sequence

from ember_gpu import dtypes
from ember_gpu.codegen import KernelWriter, linear, strides
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import AnchorOp, DeviceNode, Inferred, Shape, broadcast_shapes, input_at


class MatMulParams:
    __slots__ = ("a_shape", "b_shape", "batch", "drop_m", "drop_n", "k", "m", "n")

    def __init__(self, a_shape: Shape, b_shape: Shape, batch: Shape, m: int, n: int, k: int,
                 drop_m: bool, drop_n: bool) -> None:
        self.a_shape = a_shape  # with a 1-D operand promoted: (1, K) or (K, 1)
        self.b_shape = b_shape
        self.batch = batch
        self.m = m
        self.n = n
        self.k = k
        self.drop_m = drop_m
        self.drop_n = drop_n


class MatMul(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        a, b = inputs[0], inputs[1]
        assert a is not None and b is not None
        a_shape = (1, *a.shape) if len(a.shape) == 1 else a.shape
        b_shape = (*b.shape, 1) if len(b.shape) == 1 else b.shape
        batch = broadcast_shapes(a_shape[:-2], b_shape[:-2])
        m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
        shape = (*batch, *(() if len(a.shape) == 1 else (m,)), *(() if len(b.shape) == 1 else (n,)))
        params = MatMulParams(a_shape, b_shape, batch, m, n, k, len(a.shape) == 1,
                              len(b.shape) == 1)
        return Inferred([shape], [a.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: MatMulParams = dn.params
        a, b = dn.inputs[0], dn.inputs[1]
        assert a is not None and b is not None
        index = list(kw.index())
        batch_index = index[:len(p.batch)]
        rest = index[len(p.batch):]
        row = "0" if p.drop_m else rest.pop(0)
        col = "0" if p.drop_n else rest.pop(0)
        a_base = _batch_offset(batch_index, p.batch, p.a_shape, row_col=(row, "0"))
        b_base = _batch_offset(batch_index, p.batch, p.b_shape, row_col=("0", col))
        return _dot(kw, a, b, a_base, b_base, a_step=1, b_step=p.n, k=p.k,
                    ctype=dtypes.compute_type(a.dtype))


def _batch_offset(batch_index: Sequence[str], batch: Shape, shape: Shape,
                  row_col: tuple[str, str]) -> str:
    """Offset of (batch..., row, col) in an operand whose batch dims broadcast to ``batch``."""
    own = shape[:-2]
    pad = len(batch) - len(own)
    indices = ["0" if dim == 1 else batch_index[pad + i] for i, dim in enumerate(own)]
    return linear([*indices, *row_col], shape)


def _dot(kw: KernelWriter, a: Value, b: Value, a_base: str, b_base: str, a_step: int,
         b_step: int, k: int, ctype: str) -> str:
    it = kw.itype
    a0, b0, acc = kw.local(it, a_base, "ab"), kw.local(it, b_base, "bb"), kw.fresh("acc")
    kw.line(f"{ctype} {acc} = 0;")
    a_at = "j" if a_step == 1 else f"j * {a_step}"
    b_at = "j" if b_step == 1 else f"j * {b_step}"
    kw.line(f"for ({it} j = 0; j < {k}; ++j) "
            f"{acc} += {kw.load(a, f'{a0} + {a_at}')} * {kw.load(b, f'{b0} + {b_at}')};")
    return acc


class Gemm(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        a, b = inputs[0], inputs[1]
        assert a is not None and b is not None
        m = a.shape[1] if node.attrs.get("transA", 0) else a.shape[0]
        n = b.shape[0] if node.attrs.get("transB", 0) else b.shape[1]
        return Inferred([(m, n)], [a.dtype])

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        a, b, c = dn.inputs[0], dn.inputs[1], input_at(dn.inputs, 2)
        assert a is not None and b is not None
        attrs = dn.node.attrs
        row, col = kw.index()
        k = a.shape[0] if attrs.get("transA", 0) else a.shape[1]
        if attrs.get("transA", 0):  # A is (K, M)
            a_base, a_step = row, strides(a.shape)[0]
        else:
            a_base, a_step = linear([row, "0"], a.shape), 1
        if attrs.get("transB", 0):  # B is (N, K)
            b_base, b_step = linear([col, "0"], b.shape), 1
        else:
            b_base, b_step = col, strides(b.shape)[0]
        ctype = dtypes.compute_type(a.dtype)
        code = _dot(kw, a, b, a_base, b_base, a_step, b_step, k, ctype)
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if alpha != 1.0:
            code = f"({code} * {dtypes.literal(alpha, a.dtype)})"
        if c is not None:
            term = kw.load_broadcast(c)
            if beta != 1.0:
                term = f"({term} * {dtypes.literal(beta, c.dtype)})"
            code = f"({code} + {term})"
        return code
