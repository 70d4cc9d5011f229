"""The operators the GPU device runs, by ONNX name: their definitions (imported on a cache miss).

``ember_gpu.ops`` lists the names (what ``SUPPORTED_OPERATORS`` reports, without importing any
definition); a test checks that both agree.
"""

from __future__ import annotations

from ember_gpu.ops.base import OpDef
from ember_gpu.ops.conv import Conv, ConvTranspose
from ember_gpu.ops.elementwise import ELEMENTWISE_OPS
from ember_gpu.ops.matmul import Gemm, MatMul
from ember_gpu.ops.movement import Alias, Concat, Gather, Pad, Slice, Split, Tile, Transpose
from ember_gpu.ops.pool import Pool
from ember_gpu.ops.reduce import Reduce, Softmax
from ember_gpu.ops.resize import Resize

_ALIAS = Alias()

#: Operators with device code.
DEVICE_OPS: dict[str, OpDef] = {
    **ELEMENTWISE_OPS,
    "Conv": Conv(),
    "ConvTranspose": ConvTranspose(),
    "Resize": Resize(),
    "MaxPool": Pool(average=False),
    "AveragePool": Pool(average=True),
    "MatMul": MatMul(),
    "Gemm": Gemm(),
    "ReduceSum": Reduce("sum"),
    "ReduceMean": Reduce("mean"),
    "ReduceMax": Reduce("max"),
    "ReduceMin": Reduce("min"),
    "GlobalAveragePool": Reduce("mean", global_pool=True),
    "GlobalMaxPool": Reduce("max", global_pool=True),
    "Softmax": Softmax(),
    "Transpose": Transpose(),
    "Slice": Slice(),
    "Gather": Gather(),
    "Concat": Concat(),
    "Pad": Pad(),
    "Tile": Tile(),
    "Split": Split(),
    **dict.fromkeys(["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"],
                    _ALIAS),
}
