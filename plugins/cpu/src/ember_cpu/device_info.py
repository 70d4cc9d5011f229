"""What the CPU device is: its brand, and the instruction sets that compiled graphs depend on."""

from __future__ import annotations

import platform
from functools import cache

#: CPU features that change which kernels onnxruntime picks or which layouts its optimizer
#: writes into a saved graph; a blob made with one set must not be imported with another.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
                  "asimd", "sve", "sve2", "i8mm", "bf16")


@cache
def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break  # the first processor's block is enough
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def brand() -> str:
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine()


def instruction_sets() -> list[str]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [flag for flag in RELEVANT_FLAGS if flag in flags]


def architecture(onnxruntime_version: str) -> str:
    isa = "+".join(instruction_sets()) or "generic"
    return f"{platform.machine()}-{isa}-onnxruntime{onnxruntime_version}"
