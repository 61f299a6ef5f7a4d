"""The C-style kernel of `random_binomial` (theanine.codegen.random_kernels), compiled with
the C backend's flags, against the NumPy reference it mirrors: the same counts."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from theanine.backends.cpu_c.compiler import FLAGS
from theanine.backends.cpu_c.dialect import CDialect
from theanine.codegen.random_kernels import binomial_prelude as prelude
from theanine.tensor.random_ops import binomial_from_uniform

WRAPPER = """
#include <math.h>
#include <stdint.h>
{helper}
void run(int64_t count, const double *u, const int64_t *n, const double *p, int64_t *out)
{{
    for (int64_t i = 0; i < count; ++i) out[i] = th_binomial_from_uniform(u[i], n[i], p[i]);
}}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_c_helper_gives_the_references_counts(tmp_path):
    src, lib = tmp_path / "binomial.c", tmp_path / "binomial.so"
    src.write_text(WRAPPER.format(helper=prelude(CDialect())))
    subprocess.run(["cc", *FLAGS, str(src), "-o", str(lib), "-lm"], check=True)
    run = ctypes.CDLL(str(lib)).run
    rng = np.random.default_rng(0)
    count = 20000
    u = rng.random(count)
    n = rng.choice([0, 1, 2, 7, 40, 1000, 100000, -3], count).astype(np.int64)
    p = rng.choice([0.0, 1e-4, 0.02, 0.3, 0.5, 0.97, 1.0, 1.5, -0.1, np.nan], count)
    out = np.empty(count, np.int64)
    ptr = np.ctypeslib.as_ctypes
    run(ctypes.c_int64(count), ptr(u), ptr(n), ptr(p), ptr(out))
    np.testing.assert_array_equal(out, binomial_from_uniform(u, n, p))


def test_the_opencl_helper_gives_the_references_counts():
    from theanine.backend import backends

    if not backends()["opencl"].available()[0]:
        pytest.skip("no OpenCL device")
    from theanine.backends.opencl.dialect import OpenCLDialect
    from theanine.backends.opencl.runtime import default_device, import_cl

    cl = import_cl()
    dev = default_device()[0][2]
    if "cl_khr_fp64" not in dev.extensions:
        pytest.skip("the OpenCL device has no float64")
    d = OpenCLDialect(fp64=True)
    source = d.header + prelude(d) + """
__kernel void run(__global const double *u, __global const long *n, __global const double *p,
                  __global long *out)
{ const size_t i = get_global_id(0); out[i] = th_binomial_from_uniform(u[i], n[i], p[i]); }
"""
    ctx = cl.Context([dev])
    queue = cl.CommandQueue(ctx)
    kernel = cl.Program(ctx, source).build().run
    rng = np.random.default_rng(1)
    count = 4000
    u = rng.random(count)
    n = rng.choice([0, 3, 40, 1000, 100000], count).astype(np.int64)
    p = rng.choice([0.0, 0.02, 0.5, 0.97, 1.0], count)
    mf = cl.mem_flags
    bufs = [cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a) for a in (u, n, p)]
    out = np.empty(count, np.int64)
    out_buf = cl.Buffer(ctx, mf.WRITE_ONLY, out.nbytes)
    kernel(queue, (count,), None, *bufs, out_buf)
    cl.enqueue_copy(queue, out, out_buf)
    np.testing.assert_array_equal(out, binomial_from_uniform(u, n, p))
