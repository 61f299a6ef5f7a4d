"""The C-style kernel skeletons share their pieces (theanine.codegen.skeleton): the C backend's
inner loops and the GPU kernels declare operands and loop over work-items through the same
code, and each language's work-item indices are a table in its dialect."""

import pytest

from theanine.backends.cpu_c.dialect import CKernelRenderer
from theanine.backends.cuda.dialect import CUDADialect, CUDARenderer
from theanine.backends.opencl.dialect import OpenCLDialect
from theanine.codegen.gpu import GpuRenderer
from theanine.codegen.ir import Call, Kernel, Load, Param
from theanine.codegen.skeleton import KernelArg


def test_work_item_indices_are_each_dialects_table():
    cuda, opencl, c = CUDADialect(), OpenCLDialect(fp64=True), CKernelRenderer().dialect
    assert cuda.work_item("global_id", 1) == "((int64_t)blockIdx.y * blockDim.y + threadIdx.y)"
    assert cuda.work_item("num_groups") == "(int64_t)gridDim.x"
    assert opencl.work_item("local_id", 1) == "(int64_t)get_local_id(1)"
    assert opencl.work_item("global_size") == "(int64_t)get_global_size(0)"
    assert (c.work_item("global_id"), c.work_item("global_size")) == ("0", "1")
    with pytest.raises(ValueError, match="c kernels have no work-item index 'local_id'"):
        c.work_item("local_id")


def test_one_loop_and_one_declaration_for_every_language():
    """The element loop is the grid-stride loop of the dialect's table (a C function is the one
    work-item of its run), and array parameters are declared through the dialect."""
    renderers = {"c": CKernelRenderer(), "opencl": GpuRenderer(OpenCLDialect(fp64=True)),
                 "cuda": CUDARenderer()}
    loops = {name: r.loop() for name, r in renderers.items()}
    assert loops == {
        "c": "for (int64_t i = 0; i < n; i += 1)",
        "opencl": "for (int64_t i = (int64_t)get_global_id(0); i < n; "
                  "i += (int64_t)get_global_size(0))",
        "cuda": "for (int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x); i < n; "
                "i += ((int64_t)gridDim.x * blockDim.x))"}
    read = KernelArg("I0", "float32", pointer=True)
    written = KernelArg("O0", "int64", pointer=True, const=False)
    declared = {name: (r.declare(read), r.declare(written)) for name, r in renderers.items()}
    assert declared == {"c": ("const float *restrict I0", "int64_t *restrict O0"),
                        "opencl": ("__global const float *restrict I0",
                                   "__global int64_t *restrict O0"),
                        "cuda": ("const float *__restrict__ I0", "int64_t *__restrict__ O0")}


def test_c_and_gpu_kernels_print_the_same_element():
    """Both skeletons load inputs I<b>, read parameters P<j> and store outputs O<j> through
    the shared pieces: the statements computing one element are the same text."""
    k = Kernel("th_k", 1, [("float32", 1)], ["float32"],
               [Call("float32", "mul", (Load("float32", 0), Param("float32", 0)))],
               output_dtypes=["float32"])
    c_text = CKernelRenderer().elementwise(k)
    gpu_text = GpuRenderer(OpenCLDialect(fp64=True)).contiguous(k, "th_k_c").text
    assert "const float P0 = *(const float *)prm[0];" in c_text
    assert "const float t2 = (t0 * t1);" in c_text and "const float t2 = (t0 * t1);" in gpu_text
    assert "O0[i] = t2;" in c_text and "O0[offO0 + i] = t2;" in gpu_text
