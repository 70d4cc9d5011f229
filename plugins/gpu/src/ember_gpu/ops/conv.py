"""Conv: direct convolution, one work-item per output element, any number of spatial dims.

The loops over input channels and the kernel window have literal bounds, so the OpenCL compiler
unrolls the window; positions in the padding are skipped, and the bounds check is left out on
axes where no window can leave the input. Groups (depthwise included) pick their channel slice
from the output channel. The bias is added after the sum, as the ONNX reference does. A
BatchNormalization right after a Conv with constant weights is folded into them at compile time
(``transforms.py``), and elementwise consumers are fused behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ember_gpu import dtypes
from ember_gpu.codegen import KernelWriter, strides
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import AnchorOp, DeviceNode, Inferred, input_at
from ember_gpu.ops.window import Window, always_inside, conv_window


class ConvParams:
    __slots__ = ("channels", "group", "out_channels", "window")

    def __init__(self, window: Window, channels: int, out_channels: int, group: int) -> None:
        self.window = window
        self.channels = channels  # input channels
        self.out_channels = out_channels
        self.group = group


class Conv(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        group = int(node.attrs.get("group", 1))
        window = conv_window(node.attrs, x.shape[2:], w.shape[2:])
        params = ConvParams(window, x.shape[1], w.shape[0], group)
        return Inferred([(x.shape[0], w.shape[0], *window.out)], [x.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: ConvParams = dn.params
        x, w, bias = dn.inputs[0], dn.inputs[1], input_at(dn.inputs, 2)
        assert x is not None and w is not None
        it, ctype = kw.itype, dtypes.compute_type(x.dtype)
        n, m, *out = kw.index()
        window = p.window
        nd = len(window.size)
        in_group, out_group = p.channels // p.group, p.out_channels // p.group
        spatial, taps = math.prod(window.size), math.prod(window.kernel)
        x_strides, w_strides = strides(window.size), strides(window.kernel)
        acc = kw.fresh("acc")
        kw.line(f"{ctype} {acc} = 0;")
        first = f"({m} / {out_group}) * {in_group}" if p.group > 1 else "0"
        kw.line(f"for ({it} c = 0; c < {in_group}; ++c) {{")
        kw.line(f"  const {it} xc = ({n} * {p.channels} + {first} + c) * {spatial};")
        kw.line(f"  const {it} wc = ({m} * {in_group} + c) * {taps};")
        x_terms, w_terms = ["xc"], ["wc"]
        indent = "  "
        for axis in range(nd):
            k, position = f"k{axis}", f"p{axis}"
            kw.line(f"{indent}for ({it} {k} = 0; {k} < {window.kernel[axis]}; ++{k}) {{")
            indent += "  "
            start = f"{out[axis]} * {window.strides[axis]} - {window.begin[axis]}"
            kw.line(f"{indent}const {it} {position} = {start} + {k} * {window.dilations[axis]};")
            if not always_inside(window, axis):
                kw.line(f"{indent}if ({position} < 0 || {position} >= {window.size[axis]}) "
                        "continue;")
            x_terms.append(f"{position} * {x_strides[axis]}")
            w_terms.append(f"{k} * {w_strides[axis]}")
        product = f"{kw.load(x, ' + '.join(x_terms))} * {kw.load(w, ' + '.join(w_terms))}"
        kw.line(f"{indent}{acc} += {product};")
        for _ in range(nd + 1):
            indent = indent[:-2]
            kw.line(f"{indent}}}")
        if bias is not None:
            return f"({acc} + {kw.load(bias, m)})"
        return acc


class ConvTransposeParams:
    __slots__ = ("begin", "dilations", "group", "kernel", "size", "strides")

    def __init__(self, size: tuple[int, ...], kernel: tuple[int, ...], strides: list[int],
                 dilations: list[int], begin: list[int], group: int) -> None:
        self.size = size  # input spatial dims
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.begin = begin  # pads before each spatial dim
        self.group = group


class ConvTranspose(AnchorOp):
    """ConvTranspose as a gather: each output element sums the input positions whose scattered
    window covers it (``o = i * stride + k * dilation - pad``), so no two work-items write the
    same element. Output size and pads follow ``onnx.reference`` (``output_shape``,
    ``output_padding``, ``auto_pad``)."""

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        attrs = node.attrs
        size, nd = tuple(x.shape[2:]), len(x.shape) - 2
        kernel = tuple(w.shape[2:])
        strides = list(attrs.get("strides") or [1] * nd)
        dilations = list(attrs.get("dilations") or [1] * nd)
        extra = list(attrs.get("output_padding") or [0] * nd)
        pads = attrs.get("pads")
        output_shape = attrs.get("output_shape")
        auto_pad = attrs.get("auto_pad", "NOTSET")
        natural = [strides[i] * (size[i] - 1) + extra[i] + (kernel[i] - 1) * dilations[i] + 1
                   for i in range(nd)]
        if pads is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = list(output_shape or [size[i] * strides[i] for i in range(nd)])[-nd:]
            total = [natural[i] - out[i] for i in range(nd)]
            begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        else:
            pads = list(pads or [0] * (2 * nd))
            begin = pads[:nd]
            out = (list(output_shape)[-nd:] if output_shape
                   else [natural[i] - pads[i] - pads[i + nd] for i in range(nd)])
        group = int(attrs.get("group", 1))
        params = ConvTransposeParams(size, kernel, strides, dilations, begin, group)
        return Inferred([(x.shape[0], w.shape[1] * group, *out)], [x.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: ConvTransposeParams = dn.params
        x, w, bias = dn.inputs[0], dn.inputs[1], input_at(dn.inputs, 2)
        assert x is not None and w is not None
        it, ctype = kw.itype, dtypes.compute_type(x.dtype)
        n, m, *out = kw.index()
        channels, per_group_out = x.shape[1], w.shape[1]
        in_group = channels // p.group
        spatial, taps = math.prod(p.size), math.prod(p.kernel)
        x_strides, w_strides = strides(p.size), strides(p.kernel)
        acc = kw.fresh("acc")
        kw.line(f"{ctype} {acc} = 0;")
        first = f"({m} / {per_group_out}) * {in_group}" if p.group > 1 else "0"
        within = f"({m} % {per_group_out})" if p.group > 1 else m
        kw.line(f"for ({it} c = 0; c < {in_group}; ++c) {{")
        kw.line(f"  const {it} ci = {first} + c;")
        kw.line(f"  const {it} xc = ({n} * {channels} + ci) * {spatial};")
        kw.line(f"  const {it} wc = (ci * {per_group_out} + {within}) * {taps};")
        x_terms, w_terms = ["xc"], ["wc"]
        indent = "  "
        for axis in range(len(p.size)):
            k, q, position = f"k{axis}", f"q{axis}", f"p{axis}"
            kw.line(f"{indent}for ({it} {k} = 0; {k} < {p.kernel[axis]}; ++{k}) {{")
            indent += "  "
            kw.line(f"{indent}const {it} {q} = {out[axis]} + {p.begin[axis]} - "
                    f"{k} * {p.dilations[axis]};")
            stride = p.strides[axis]
            if stride != 1:
                kw.line(f"{indent}if ({q} < 0 || {q} % {stride} != 0) continue;")
                kw.line(f"{indent}const {it} {position} = {q} / {stride};")
                kw.line(f"{indent}if ({position} >= {p.size[axis]}) continue;")
            else:
                kw.line(f"{indent}const {it} {position} = {q};")
                kw.line(f"{indent}if ({position} < 0 || {position} >= {p.size[axis]}) "
                        "continue;")
            x_terms.append(f"{position} * {x_strides[axis]}")
            w_terms.append(f"{k} * {w_strides[axis]}")
        product = f"{kw.load(x, ' + '.join(x_terms))} * {kw.load(w, ' + '.join(w_terms))}"
        kw.line(f"{indent}{acc} += {product};")
        for _ in range(len(p.size) + 1):
            indent = indent[:-2]
            kw.line(f"{indent}}}")
        if bias is not None:
            return f"({acc} + {kw.load(bias, m)})"
        return acc
