"""What the GPU backends (OpenCL, CUDA) share: device arrays, the program executor that runs a
lowered graph with a device runtime, and the table of device implementations of library ops."""
