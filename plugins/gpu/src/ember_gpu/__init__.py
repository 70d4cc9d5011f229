"""ember-gpu: the GPU device, on any OpenCL device through pyopencl.

Importing the package imports neither pyopencl nor onnx and creates no OpenCL context: that
happens when a GPU device is first listed or used. ``ember_gpu.persistent_cache`` is the
oneDNN-style persistent cache API (cache blob ids, cache blobs, the primitive cache).
"""

from ember_gpu._version import __version__

__all__ = ["__version__"]
