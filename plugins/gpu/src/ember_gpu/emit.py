"""From kernel groups to a plan: memory placement and the code of every kernel.

Groups are emitted in dependency order. Before a group's kernel is written its outputs get
workspace regions; after it, the regions of values no later kernel reads are freed for reuse.
Model inputs are placed first, model outputs are never freed, and aliases share their source's
region. Host values a kernel reads go to the constant arena (scalars become literals instead).
"""

from __future__ import annotations

from collections.abc import Sequence

from ember_gpu import dtypes
from ember_gpu.codegen import HELPERS, KernelWriter
from ember_gpu.fusion import Group
from ember_gpu.ir import Value
from ember_gpu.lowering import DeviceGraph
from ember_gpu.memory import ConstantArena, Region, Workspace
from ember_gpu.ops.base import (
    ANCHOR,
    ELEMENTWISE,
    AnchorOp,
    DeviceNode,
    ElementwiseOp,
    StandaloneOp,
)
from ember_gpu.ops.elementwise import operand_values
from ember_gpu.plan import FP64, PRELUDE, Launch, OutputSlot, Plan

_WIDE = 2**31 - 1


class Emitter:
    def __init__(self, graph: DeviceGraph) -> None:
        self.graph = graph
        self.constants = ConstantArena()
        self.workspace = Workspace()
        self.regions: dict[int, Region] = {}  # by id of the root value
        self.readers: dict[int, int] = {}
        self.pinned: set[int] = set()
        self.kernels: list[KernelWriter] = []
        self._names = 0
        largest = max((v.numel for dn in graph.nodes for v in [*dn.inputs, *dn.outputs]
                       if v is not None), default=0)
        self.wide = largest >= _WIDE  # index arithmetic in long only when int overflows

    def locate(self, value: Value) -> Region:
        root = value.root()
        if root.host is not None:
            return self.constants.add(root.host)
        return self.regions[id(root)]

    def _place(self, value: Value) -> None:
        root = value.root()
        if id(root) not in self.regions:
            self.regions[id(root)] = self.workspace.allocate(root.nbytes)

    def new_kernel(self, shape: Sequence[int], comment: str) -> KernelWriter:
        self._names += 1
        return KernelWriter(f"k{self._names - 1}", shape, self.locate, comment, self.wide)

    def emit(self, groups: list[Group], name: str) -> Plan:
        for group in groups:
            for value in group.inputs:
                root = id(value.root())
                self.readers[root] = self.readers.get(root, 0) + 1
        for value in self.graph.outputs:
            if value is not None and not value.on_host:
                self.pinned.add(id(value.root()))
        inputs = []
        for value in self.graph.inputs:
            if value.on_host or (id(value) not in self.readers and id(value) not in self.pinned):
                inputs.append(None)
                continue
            self._place(value)
            inputs.append(self.regions[id(value)])
        for group in groups:
            for value in group.sink.outputs:  # values inside a fused kernel stay in registers
                self._place(value)
            writers = self._write(group)
            self.kernels.extend(w for w in writers if w.global_size > 0)
            written = [v.root() for v in group.sink.outputs]
            for root in [v.root() for v in group.inputs]:
                self.readers[id(root)] -= 1
                if self.readers[id(root)] == 0 and id(root) not in self.pinned:
                    self.workspace.free(self.regions[id(root)])
            for root in written:  # an output nothing reads (Split's unused parts)
                if id(root) not in self.readers and id(root) not in self.pinned:
                    self.workspace.free(self.regions[id(root)])
        outputs = tuple(
            OutputSlot(v.shape, v.dtype, host=v.host) if v.on_host
            else OutputSlot(v.shape, v.dtype, region=self.locate(v))
            for v in self.graph.outputs
        )
        return Plan(
            name=name,
            source=program_source(self.kernels),
            launches=tuple(Launch(k.name, k.global_size) for k in self.kernels),
            constants=self.constants.to_bytes(),
            workspace_size=self.workspace.size,
            inputs=tuple(inputs),
            outputs=outputs,
        )

    def _write(self, group: Group) -> list[KernelWriter]:
        if not group.fusable:
            op = group.sink.op
            assert isinstance(op, StandaloneOp)
            return op.emit(group.sink, self.new_kernel)
        out = group.sink.outputs[0]
        kw = self.new_kernel(group.shape, " + ".join(dn.label for dn in group.nodes))
        computed: dict[int, str] = {}
        for dn in group.nodes:
            result = dn.outputs[0]
            ctype = dtypes.compute_type(result.dtype)
            if dn.op.kind == ANCHOR:
                assert isinstance(dn.op, AnchorOp)
                code = dn.op.body(dn, kw)
            else:
                assert dn.op.kind == ELEMENTWISE and isinstance(dn.op, ElementwiseOp)
                code = dn.op.expression(dn, self._operands(dn, kw, computed), kw)
            computed[id(result)] = kw.local(ctype, code, prefix="v")
        kw.store(out, "gid", computed[id(out)])
        return [kw]

    @staticmethod
    def _operands(dn: DeviceNode, kw: KernelWriter, computed: dict[int, str]) -> list[str | None]:
        assert isinstance(dn.op, ElementwiseOp)
        shapes = dn.op.operand_shapes(dn)
        codes: list[str | None] = []
        for value, shape in zip(operand_values(dn), shapes, strict=False):
            if value is None:
                codes.append(None)
            elif id(value) in computed:
                codes.append(computed[id(value)])
            else:
                codes.append(kw.load_broadcast(value, shape))
        return codes


def program_source(kernels: list[KernelWriter]) -> str:
    """One program for all kernels of a plan: fewer, larger programs build faster."""
    parts = [PRELUDE]
    if any(k.fp64 for k in kernels):
        parts.append(FP64)
    helpers: list[str] = []
    for kernel in kernels:
        helpers.extend(h for h in kernel.helpers if h not in helpers)
    parts.extend(HELPERS[h] for h in helpers)
    parts.extend(k.source() for k in kernels)
    return "\n".join(parts)
