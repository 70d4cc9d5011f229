"""Fixtures of the GPU tests: real OpenCL (PoCL's CPU device in CI), one kernel cache per session.

OpenCL builds dominate the GPU tests' time, so every test that is not about caching compiles
through one CACHE_DIR shared by the whole session (Ember's own kernel cache): a program built by
one test is loaded from its binary by the next. Tests about caching make their own directories.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ember
from ember_gpu import opencl


@pytest.fixture(scope="session")
def gpu_device() -> str:
    """The GPU device the tests run on; its absence is a failure, never a skip."""
    devices = opencl.devices()
    assert devices, f"no OpenCL device: {opencl.absence_reason()}"
    return "GPU.0"


@pytest.fixture(scope="session")
def kernel_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpu-kernel-cache")


@pytest.fixture(scope="session")
def core(gpu_device: str, kernel_cache_dir: Path) -> ember.Core:
    """A Core whose GPU compiles through the session's kernel cache."""
    core = ember.Core()
    core.set_property(gpu_device, {"CACHE_DIR": str(kernel_cache_dir)})
    return core
