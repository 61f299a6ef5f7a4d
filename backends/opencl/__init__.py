"""The OpenCL backend: the OpenCL C dialect of the shared GPU renderer, run through pyopencl."""
