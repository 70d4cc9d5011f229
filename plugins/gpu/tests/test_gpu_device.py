"""The GPU plugin registers and lists OpenCL devices without touching OpenCL at import."""

import subprocess
import sys

import ember
from ember_gpu import plugin


def test_plugin_is_registered_through_its_entry_point():
    core = ember.Core()
    (info,) = [p for p in core.loaded_plugins if p.name == "gpu"]
    assert info.distribution == "ember-gpu"


def test_listed_devices_are_indexed_and_described():
    core = ember.Core()
    gpus = [d for d in core.available_devices if d.startswith("GPU")]
    assert gpus == [f"GPU.{i}" for i in range(len(plugin._opencl_devices()))]
    for name in gpus:
        assert "OpenCL" in core.get_property(name, "FULL_DEVICE_NAME")


def test_importing_the_plugin_does_not_import_pyopencl():
    code = "import sys, ember_gpu.plugin; print('pyopencl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
