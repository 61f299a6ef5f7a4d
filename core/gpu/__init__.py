"""What the GPU backends (OpenCL, CUDA) share: device arrays, the program executor that runs a
lowered graph with a device runtime, its plans, and the shared op table (`gpu_impl`) each GPU
backend's own table falls back to."""
