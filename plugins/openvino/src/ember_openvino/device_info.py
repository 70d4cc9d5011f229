"""What the OPENVINO device is: the CPU's brand and the instruction sets OpenVINO's CPU plugin
chooses its kernels by (an exported model holds code paths chosen for them)."""

from __future__ import annotations

import platform

from ember.plugin import host_cpu_brand, host_instruction_sets

#: CPU features that change the kernels OpenVINO's CPU plugin picks or the precisions it can run;
#: a blob made with one set must not be imported with another.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                  "amx_bf16", "amx_int8", "amx_fp16", "asimd", "sve", "sve2", "i8mm", "bf16")


def brand() -> str:
    return host_cpu_brand()


def instruction_sets() -> list[str]:
    return host_instruction_sets(RELEVANT_FLAGS)


def architecture(openvino_version: str) -> str:
    isa = "+".join(instruction_sets()) or "generic"
    return f"{platform.machine()}-{isa}-openvino{openvino_version}"


def describe(device: str, openvino_version: str) -> tuple[str, str, list[str]]:
    """What OpenVINO says about one of its devices other than its CPU: its full name, its
    architecture (with OpenVINO's version: an exported model depends on both) and the
    precisions it computes in (OpenVINO's capability names)."""
    from ember_openvino import runtime

    core = runtime.core()
    full_name = str(core.get_property(device, "FULL_DEVICE_NAME"))
    try:
        architecture = str(core.get_property(device, "DEVICE_ARCHITECTURE"))
    except RuntimeError:  # a device plugin without the property: its full name stands in
        architecture = full_name
    capabilities = [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    precisions: list[str] = [c for c in ("FP32", "BF16", "FP16") if c in capabilities]
    return (f"OpenVINO {openvino_version} {device} plugin: {full_name}",
            f"{device}-{architecture}-openvino{openvino_version}", precisions or ["FP32"])
