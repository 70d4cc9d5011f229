"""What the CPU device is: its brand, and the instruction sets that compiled graphs depend on."""

from __future__ import annotations

import platform

from ember.plugin import host_cpu_brand, host_instruction_sets

#: CPU features that change which kernels onnxruntime picks or which layouts its optimizer
#: writes into a saved graph; a blob made with one set must not be imported with another.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
                  "asimd", "sve", "sve2", "i8mm", "bf16")


def brand() -> str:
    return host_cpu_brand()


def instruction_sets() -> list[str]:
    return host_instruction_sets(RELEVANT_FLAGS)


def architecture(onnxruntime_version: str) -> str:
    isa = "+".join(instruction_sets()) or "generic"
    return f"{platform.machine()}-{isa}-onnxruntime{onnxruntime_version}"
