"""ember-gpu: the GPU device, on any OpenCL device through pyopencl."""
