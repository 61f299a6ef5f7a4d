"""The CUDA backend: the CUDA C dialect of the shared GPU renderer, built by nvcc and run through
pycuda."""
