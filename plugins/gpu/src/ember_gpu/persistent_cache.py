"""The persistent cache API, after oneDNN's: cache blob ids, cache blobs, kernels built from them.

Building an OpenCL program is the slow step of compiling for the GPU device (on PoCL's CPU
device, 0.5-1 s for a small program, plus tens of milliseconds per kernel at its first launch);
creating it from a saved binary takes milliseconds. The API, with oneDNN's names::

    from ember_gpu import persistent_cache as pc

    descriptor = pc.kernel_descriptor("GPU", source)   # oneDNN: a primitive descriptor
    key = descriptor.cache_blob_id()                   # bytes identifying it on this device
    blob = store.get(key)                              # any store: a file, a database...
    kernel = pc.create_kernel(descriptor, blob)        # from the blob when there is one
    if blob is None:
        ...                                            # run it once (see below), then
        store.put(key, kernel.cache_blob())

- :meth:`KernelDescriptor.cache_blob_id` holds Ember's git commit (see ``build_info`` for
  what happens without one), the OpenCL platform, device and driver, the build options and a
  digest of the source. The versions of Ember and of the plugin are added by the core's entry
  key (``KernelCache.key``) when the blob is stored in ``CACHE_DIR``.
- :meth:`Kernel.cache_blob` is the driver's binary. On PoCL, take it after the kernel's first
  launch: a binary taken right after building still compiles at its first launch (PoCL
  specialises each kernel to its work-group size then), one taken after does not.
- :func:`create_kernel` looks in the in-memory primitive cache first (``primitive_cache``): an
  identical kernel already in memory is returned and the blob is not used.
- Each creation prints a verbose line (``verbose``).

On devices that are not OpenCL devices (CPU, TEMPLATE) there is no such API:
:func:`kernel_descriptor` raises :class:`ember.errors.NotSupportedError` saying so, as oneDNN
returns ``unimplemented`` for cache blob ids on CPU engines.

The GPU device uses all of this itself, with Ember's model-cache directory as the store: see
``kernel_store.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import blake3

from ember.plugin import EmberError, NotSupportedError, UnknownDeviceError
from ember_gpu import opencl, primitive_cache, verbose
from ember_gpu.build_info import build_identity
from ember_gpu.opencl import OpenCLDevice
from ember_gpu.primitive_cache import get_primitive_cache_capacity, set_primitive_cache_capacity

__all__ = [
    "BlobRejectedError", "Kernel", "KernelDescriptor", "create_kernel",
    "get_primitive_cache_capacity", "kernel_descriptor", "set_primitive_cache_capacity",
]

#: The layout of a cache blob (a magic, then the driver's binary); bump it when that changes.
BLOB_FORMAT = 1
_MAGIC = b"EMBERCL" + bytes([BLOB_FORMAT])
#: The layout of a cache blob id.
ID_FORMAT = 1


class BlobRejectedError(EmberError, ValueError):
    """A cache blob the device cannot use: another format, another driver, damaged bytes."""


class KernelDescriptor:
    """What a kernel is, before it exists: OpenCL C source, build options, device."""

    def __init__(self, device: OpenCLDevice, source: str, options: Sequence[str] = (),
                 name: str = "kernel", kernel_names: Sequence[str] = ()) -> None:
        self.device = device
        self.source = source
        self.options = tuple(options)
        self.name = name
        self.kernel_names = tuple(kernel_names)  # entry points a blob must provide
        self._id: bytes | None = None

    def cache_blob_id(self) -> bytes:
        """Bytes that identify this kernel on this device, for this build of Ember."""
        if self._id is None:
            source_digest = blake3.blake3(self.source.encode()).hexdigest()
            self._id = json.dumps({
                "kind": "opencl-program", "format": ID_FORMAT, **build_identity(),
                "device": self.device.identity(), "options": list(self.options),
                "source": source_digest,
            }, sort_keys=True, separators=(",", ":")).encode()
        return self._id

    @property
    def short_id(self) -> str:
        return blake3.blake3(self.cache_blob_id()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"<KernelDescriptor {self.name} on {self.device.name} {self.short_id}>"


class Kernel:
    """A built OpenCL program: its entry points, and the blob to create it again."""

    def __init__(self, descriptor: KernelDescriptor, program: Any) -> None:
        self.descriptor = descriptor
        self.program = program

    def kernel(self, name: str) -> Any:
        """A new ``pyopencl.Kernel`` for one entry point (its own arguments, its own object)."""
        return opencl.pyopencl().Kernel(self.program, name)

    def cache_blob(self) -> bytes:
        """The device binary, with a small header; see the module docstring for when to take
        it on PoCL."""
        (binary,) = self.program.binaries
        return _MAGIC + bytes(binary)


def kernel_descriptor(device_name: str, source: str, options: Sequence[str] = (),
                      name: str = "kernel") -> KernelDescriptor:
    """A descriptor for an OpenCL device by Ember's name (``GPU``, ``GPU.1``)."""
    base, _, index = device_name.partition(".")
    if base != "GPU" or (index and not index.isdigit()):
        raise NotSupportedError(
            f"{device_name}: the persistent kernel cache API (cache_blob_id, cache_blob, "
            "create_kernel) is implemented for OpenCL devices only (GPU, GPU.0, GPU.1, ...); "
            f"{device_name} builds no OpenCL kernels. Its compiled models are cached whole in "
            "CACHE_DIR when it declares EXPORT_IMPORT.")
    devices = opencl.devices()
    position = int(index) if index else 0
    if position >= len(devices):
        raise UnknownDeviceError(device_name, [f"GPU.{i}" for i in range(len(devices))],
                                 opencl.absence_reason() or "")
    return KernelDescriptor(devices[position], source, options, name)


def lookup_kernel(descriptor: KernelDescriptor) -> Kernel | None:
    """The identical kernel from the primitive cache (logged as a ``cache_hit``), or None."""
    start = time.perf_counter()
    found = primitive_cache.lookup(descriptor.cache_blob_id())
    if found is not None:
        _report(verbose.CACHE_HIT, descriptor, time.perf_counter() - start)
    return found


def create_kernel(descriptor: KernelDescriptor,
                  cache_blob: bytes | memoryview | None = None) -> Kernel:
    """The kernel of ``descriptor``: from the primitive cache, else from ``cache_blob``, else
    built from source.

    :raises BlobRejectedError: the blob is not a blob of this kernel on this device.
    """
    found = lookup_kernel(descriptor)
    if found is not None:
        return found
    start = time.perf_counter()
    if cache_blob is not None:
        program = _program_from_blob(descriptor, cache_blob)
        how = verbose.FROM_CACHE_BLOB
    else:
        program = _program_from_source(descriptor)
        how = verbose.CACHE_MISS
    seconds = time.perf_counter() - start
    kernel = primitive_cache.insert(descriptor.cache_blob_id(), Kernel(descriptor, program))
    _report(how, descriptor, seconds)
    return kernel


def _program_from_source(descriptor: KernelDescriptor) -> Any:
    cl = opencl.pyopencl()
    context = opencl.runtime(descriptor.device).context
    # cache_dir=False: pyopencl's own binary cache (in the home directory) stays out of it.
    return cl.Program(context, descriptor.source).build(
        options=list(descriptor.options), cache_dir=False)  # type: ignore[arg-type]


def _program_from_blob(descriptor: KernelDescriptor, blob: bytes | memoryview) -> Any:
    view = memoryview(blob)
    if bytes(view[:len(_MAGIC)]) != _MAGIC:
        raise BlobRejectedError("not an ember-gpu kernel blob of format "
                                f"{BLOB_FORMAT} (it starts with {bytes(view[:8])!r})")
    binary = bytes(view[len(_MAGIC):])  # one copy of a binary of megabytes, not two
    cl = opencl.pyopencl()
    context = opencl.runtime(descriptor.device).context
    try:
        program = cl.Program(context, [descriptor.device.handle], [binary])
        program.build(options=list(descriptor.options))
    except cl.Error as exc:
        raise BlobRejectedError(f"the OpenCL driver refused it: {exc}") from exc
    missing = set(descriptor.kernel_names) - set(program.kernel_names.split(";"))
    if missing:
        raise BlobRejectedError(f"it lacks the kernels {sorted(missing)}")
    return program


def _report(how: str, descriptor: KernelDescriptor, seconds: float) -> None:
    kernels = len(descriptor.kernel_names) or descriptor.source.count("__kernel")
    verbose.kernel_created(how, f"GPU.{descriptor.device.ordinal}", descriptor.name, kernels,
                           descriptor.short_id, seconds)
