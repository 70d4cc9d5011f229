"""What the OPENVINO device is: the CPU's brand and the instruction sets OpenVINO's CPU plugin
chooses its kernels by (an exported model holds code paths chosen for them)."""

from __future__ import annotations

import platform
from functools import cache

#: CPU features that change the kernels OpenVINO's CPU plugin picks or the precisions it can run;
#: a blob made with one set must not be imported with another.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                  "amx_bf16", "amx_int8", "amx_fp16", "asimd", "sve", "sve2", "i8mm", "bf16")


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


def architecture(openvino_version: str) -> str:
    isa = "+".join(instruction_sets()) or "generic"
    return f"{platform.machine()}-{isa}-openvino{openvino_version}"
