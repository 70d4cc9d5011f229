"""The host CPU as device plugins describe it: its brand, and which instruction sets it has.

A plugin whose compiled code depends on the CPU (kernels chosen per instruction set) names these
in its device architecture, so that a blob made on one CPU is not imported on another. Read from
``/proc/cpuinfo`` once per process (the first processor's block); elsewhere, ``platform``'s view.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from functools import cache

__all__ = ["host_cpu_brand", "host_instruction_sets"]


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


def host_cpu_brand() -> str:
    """The host CPU's brand ("model name" in /proc/cpuinfo), else what ``platform`` knows."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def host_instruction_sets(relevant: Iterable[str]) -> list[str]:
    """Those of the ``relevant`` instruction-set flags (``/proc/cpuinfo`` spelling: "avx2",
    "avx512f", "asimd", ...) that the host CPU has, in the order given."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [flag for flag in relevant if flag in flags]
