"""The runtime interface a GPU backend implements (compiler, allocator, launcher) and the
launch logic built on it: geometry of elementwise and reduction kernels, GEMM, copies.

A backend's runtime subclass supplies `alloc`, `upload`, `download`, `build` and `launch`;
everything else here is shared by OpenCL and CUDA.
"""

from __future__ import annotations

from functools import partial
from math import prod
from typing import Any

import numpy as np

from theanine.codegen.gpu import CPU_RUN, TILE, GpuRenderer, content_named
from theanine.codegen.ir import Call, Kernel, Load
from theanine.codegen.skeleton import KernelArg, KernelSource
from theanine.gpu.array import DeviceArray, contiguous_strides
from theanine.graph.basic import located

I64 = np.int64
SERIAL_CHUNK = 4096  # the shortest share of a reduction one work-item of a CPU device takes


class AllocationTooLarge(MemoryError):
    """An array larger than the device's largest single allocation."""


class Runtime:
    """One device: memory, program building and kernel launches."""

    device_name = "?"
    fp64 = True
    workgroup = 256  # work-items per group (a power of two the device accepts)
    max_groups = 1024  # groups to fill the device in a grid-stride launch
    elementwise_groups = 1024  # the cap for grid-stride elementwise launches
    dtypes = frozenset(["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                        "uint64", "float32", "float64"])  # what its kernels compute
    max_alloc: int | None = None  # the largest buffer the device allocates, in bytes

    def __init__(self, renderer: GpuRenderer):
        self.renderer = renderer
        self._copy_kernels: dict[str, Any] = {}

    # -- what a backend implements ---------------------------------------------------------
    def alloc(self, nbytes: int) -> Any:
        raise NotImplementedError

    def upload_into(self, buffer: Any, host: np.ndarray) -> None:
        raise NotImplementedError

    def download_into(self, host: np.ndarray, buffer: Any, byte_offset: int) -> None:
        raise NotImplementedError

    def build(self, source: str, signatures: dict[str, tuple[KernelArg, ...]]) -> dict[str, Any]:
        """Compile `source` (through the backend's cache) and return its kernels by name;
        `signatures` gives each kernel's parameters, as the renderer declared them."""
        raise NotImplementedError

    def launch(self, kernel: Any, global_size: tuple, local_size: tuple, args: list) -> None:
        raise NotImplementedError

    def kernels(self, bodies: dict[str, KernelSource]) -> dict[str, Any]:
        """The kernels of one program, by name, from their rendered functions (named after
        their text): built together as one source here; a runtime may keep the kernels it built
        for earlier programs and build only the others."""
        body = "\n".join(b.text for b in bodies.values())
        return self.build(self.renderer.d.prelude(body) + "\n" + body,
                          {name: b.args for name, b in bodies.items()})

    def synchronize(self) -> None:
        """Wait for every launched kernel to finish (for timings; transfers already wait)."""

    def adopt(self, value: Any) -> DeviceArray | None:
        """`value` viewed as a DeviceArray without a copy when it is an array already in this
        device's memory (e.g. a pycuda GPUArray); None when it is not. Backends extend this
        for their libraries' arrays."""
        if isinstance(value, DeviceArray) and value.runtime is self:
            return value
        return None

    def export(self, arr: DeviceArray) -> Any:
        """`arr` as the backend's native device array (no copy where the layout allows);
        the DeviceArray itself by default."""
        return arr

    # -- memory ----------------------------------------------------------------------------
    def check_fits(self, shape: tuple, dtype, what: str, where: str = "") -> None:
        """Raise AllocationTooLarge naming `what` (and the lines `where` that built it) if an
        array of `shape` and `dtype` is larger than the largest buffer this device allocates."""
        nbytes = prod(shape) * np.dtype(dtype).itemsize
        if self.max_alloc is not None and nbytes > self.max_alloc:
            error = AllocationTooLarge(
                f"{what} has shape {tuple(shape)} and dtype {np.dtype(dtype)}: {nbytes} bytes, "
                f"more than the {self.max_alloc} bytes {self.device_name} allocates at most in "
                "one buffer (its max_mem_alloc_size); compute it in smaller pieces or on "
                "another backend" + (f"\nIt was built at:\n{where}" if where else ""))
            raise located(error) if where else error

    def empty(self, shape: tuple, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        n = prod(shape)
        if self.max_alloc is not None and n * dtype.itemsize > self.max_alloc:
            self.check_fits(shape, dtype, "an array")
        return DeviceArray(self, self.alloc(max(n, 1) * dtype.itemsize), shape, dtype)

    def to_device(self, host) -> DeviceArray:
        """A device copy of a host array. An array whose elements overlap in memory (axes of
        stride 0, as np.broadcast_to makes) uploads only the memory it spans and keeps its
        strides on the device, so a broadcast value is never expanded."""
        host = np.asarray(host)
        span = _overlapping_span(host)
        if span is not None:
            memory, offset, strides = span
            arr = self.empty(memory.shape, memory.dtype)
            self.upload_into(arr.buffer, memory)
            return arr.view(host.shape, strides, offset)
        host = np.asarray(host, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        arr = self.empty(host.shape, host.dtype)
        if host.size:
            self.upload_into(arr.buffer, host)
        return arr

    def to_host(self, arr: DeviceArray) -> np.ndarray:
        """A new host array holding `arr` (made contiguous on the device first if needed)."""
        if not arr.is_contiguous():
            arr = self.copy(arr)
        host = np.empty(arr.shape, arr.dtype)
        if host.size:
            self.download_into(host, arr.buffer, arr.offset * arr.dtype.itemsize)
        return host

    def copy(self, src: DeviceArray, out: DeviceArray | None = None) -> DeviceArray:
        """Copy `src` (broadcast to `out`'s shape) into `out`, a new contiguous array if None."""
        if out is None:
            out = self.empty(src.shape, src.dtype)
        kernel = self._copy_kernels.get(src.dtype.name + ">" + out.dtype.name)
        if kernel is None:
            k = Kernel("th_copy", 8, [(src.dtype.name, 8)], [],
                       [_cast(Load(src.dtype.name, 0), out.dtype.name)],
                       output_dtypes=[out.dtype.name])
            cname, ctext = content_named(partial(self.renderer.contiguous, k), "c")
            sname, stext = content_named(partial(self.renderer.strided, k), "s")
            built = self.kernels({cname: ctext, sname: stext})
            kernel = (k, built[cname], built[sname])
            self._copy_kernels[src.dtype.name + ">" + out.dtype.name] = kernel
        k, kc, ks = kernel
        pad = 8 - out.ndim
        self.elementwise(k, kc, ks, [_pad(out, pad)], [_pad(src, pad + out.ndim - src.ndim)],
                         [])
        return out

    def add_into(self, src: DeviceArray, out: DeviceArray) -> None:
        """out += src (src broadcast to out's shape and cast to its dtype), in place: each
        element is read and written by one work item, so `out` may be any view."""
        key = src.dtype.name + "+>" + out.dtype.name
        kernel = self._copy_kernels.get(key)
        if kernel is None:
            o, i = out.dtype.name, src.dtype.name
            k = Kernel("th_add_into", 8, [(o, 8), (i, 8)], [],
                       [Call(o, "add", (Load(o, 0), _cast(Load(i, 1), o)))], output_dtypes=[o])
            cname, ctext = content_named(partial(self.renderer.contiguous, k), "c")
            sname, stext = content_named(partial(self.renderer.strided, k), "s")
            built = self.kernels({cname: ctext, sname: stext})
            kernel = self._copy_kernels[key] = (k, built[cname], built[sname])
        k, kc, ks = kernel
        pad = 8 - out.ndim
        self.elementwise(k, kc, ks, [_pad(out, pad)],
                         [_pad(out, pad), _pad(src, pad + out.ndim - src.ndim)], [])

    # -- launches --------------------------------------------------------------------------
    def _grid(self, n: int) -> tuple[tuple, tuple]:
        """Global and local sizes for `n` work-items: every item its own on a CPU device (its
        kernels take runs of elements and do not loop over the grid), else a grid-stride
        launch of at most `elementwise_groups` groups."""
        wg = self.workgroup
        groups = -(-n // wg) if self.renderer.cpu else min(-(-n // wg), self.elementwise_groups)
        return (wg * max(1, groups),), (wg,)

    def launch_items(self, kernel: Any, n: int, args: list) -> None:
        """Launch a grid-stride kernel (one loop over `n` items) with `args`; nothing if n is 0."""
        if n:
            self.launch(kernel, *self._grid(n), args)

    def elementwise(self, k: Kernel, kc: Any, ks: Any, outs: list[DeviceArray],
                    ins: list[DeviceArray], params: list) -> None:
        """Run elementwise kernel `k` (compiled versions kc, ks) writing `outs`."""
        shape = outs[0].shape
        n = prod(shape)
        if n == 0:
            return
        cpu = self.renderer.cpu
        scalar = k.scalar_inputs
        if all(a.shape == shape and a.is_contiguous() for a in outs) and \
                all((b in scalar and a.size == 1) or (a.shape == shape and a.is_contiguous())
                    for b, a in enumerate(ins)):
            args: list = [I64(n)]
            for a in outs + ins:
                args += [a.buffer, I64(a.offset)]
            self.launch(kc, *self._grid(-(-n // CPU_RUN) if cpu else n), args + params)
            return
        strides = [_broadcast_strides(a, shape) for a in outs + ins]
        dims, strides = simplify(shape, strides)
        args = [I64(n)] + [I64(d) for d in dims]
        for a, s in zip(outs + ins, strides):
            args += [a.buffer, I64(a.offset)] + [I64(x) for x in s]
        items = n // dims[-1] * -(-dims[-1] // CPU_RUN) if cpu and dims else n
        self.launch(ks, *self._grid(items), args + params)

    def reduce(self, k: Kernel, kr: Any, combine: tuple, x_shape: tuple,
               ins: list[DeviceArray], params: list) -> DeviceArray:
        """Run reduction kernel `k` (compiled as kr; `combine` = (Kernel, compiled) merges
        partial results) over loop shape `x_shape`; returns the (kept-axes) result."""
        red = set(k.reduce_axes)
        keep = [a for a in range(k.ndim) if a not in red]
        rax = [a for a in range(k.ndim) if a in red]
        out_shape = tuple(x_shape[a] for a in keep)
        out = self.empty(out_shape, k.acc_dtype)
        n_out = prod(out_shape)
        if n_out == 0:
            return out
        strides = [_broadcast_strides(a, x_shape) for a in ins]
        if ins:  # reduced axes in memory order of the first input: neighbours read neighbours
            rax.sort(key=lambda a: -abs(strides[0][a]))
        kdims, kstr = simplify(out_shape, [[s[a] for a in keep] for s in strides])
        rdims, rstr = simplify(tuple(x_shape[a] for a in rax),
                               [[s[a] for a in rax] for s in strides])
        n_red = prod(rdims)
        wg = self.workgroup
        n_chunks = 1
        if self.renderer.cpu:  # one work-item per (output, chunk): enough items to share
            if n_red > SERIAL_CHUNK and n_out < self.max_groups * wg:
                n_chunks = min(-(-n_red // SERIAL_CHUNK), self.max_groups * wg // n_out)
        elif n_out < self.max_groups and n_red > 4 * wg:
            n_chunks = max(1, min(-(-n_red // (4 * wg)), self.max_groups // n_out))
        chunk = -(-n_red // n_chunks) if n_red else 1
        target = out if n_chunks == 1 else self.empty((n_out, n_chunks), k.acc_dtype)
        args: list = [I64(n_out), I64(n_red), I64(n_chunks), I64(chunk)]
        args += [I64(d) for d in kdims] + [I64(d) for d in rdims]
        args += [target.buffer, I64(target.offset)]
        for a, ks_, rs_ in zip(ins, kstr, rstr):
            args += [a.buffer, I64(a.offset)] + [I64(x) for x in ks_] + [I64(x) for x in rs_]
        if self.renderer.cpu:
            self.launch(kr, *self._grid(n_out * n_chunks), args + params)
        else:
            groups = min(n_out * n_chunks, self.max_groups)
            self.launch(kr, (groups * wg,), (wg,), args + params)
        if n_chunks > 1:
            ck, ckr = combine
            final = self.reduce(ck, ckr, combine, (n_out, n_chunks), [target], [])
            return final.view(out_shape, contiguous_strides(out_shape), final.offset)
        return out

    def gemm(self, kernel: Any, a: DeviceArray, b: DeviceArray, z: DeviceArray | None,
             alpha, beta, dtype) -> DeviceArray:
        """alpha * a @ b + beta * z for 2-d a, b (z broadcast to the product's shape)."""
        m, kk = a.shape
        n = b.shape[1]
        out = self.empty((m, n), dtype)
        if m == 0 or n == 0:
            return out
        zz = z if z is not None and beta != 0 else out
        zs = _broadcast_strides(zz, (m, n)) if zz is not out else (0, 0)
        t = np.dtype(dtype).type
        args = [I64(m), I64(n), I64(kk), t(alpha), t(beta)]
        for arr, s in ((a, a.strides), (b, b.strides), (zz, zs)):
            args += [arr.buffer, I64(arr.offset), I64(s[0]), I64(s[1])]
        args += [out.buffer, I64(out.offset)]
        self.launch(kernel, (-(-n // TILE) * TILE, -(-m // TILE) * TILE), (TILE, TILE), args)
        return out


def _overlapping_span(host: np.ndarray) -> tuple[np.ndarray, int, tuple] | None:
    """(the contiguous 1-d run of memory `host` reads, the offset of its first element in it,
    its strides in elements) when that run is shorter than `host` itself; else None."""
    size = host.itemsize
    if host.size <= 1 or any(s % size for s in host.strides):
        return None
    strides = tuple(s // size for s in host.strides)
    lo = sum((n - 1) * s for n, s in zip(host.shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(host.shape, strides) if s > 0)
    if hi - lo + 1 >= host.size:
        return None
    lowest = host[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides)]
    memory = np.lib.stride_tricks.as_strided(lowest, (hi - lo + 1,), (size,), writeable=False)
    return memory, -lo, strides


def _cast(e, dtype: str):
    from theanine.codegen.ir import Call

    return e if e.dtype == dtype else Call(dtype, "cast", (e,))


def _pad(a: DeviceArray, lead: int) -> DeviceArray:
    """`a` with `lead` length-1 axes in front."""
    return a.view((1,) * lead + a.shape, (0,) * lead + a.strides)


def _broadcast_strides(a: DeviceArray, shape: tuple) -> list[int]:
    """a's strides when broadcast to `shape` (0 along broadcast axes)."""
    lead = len(shape) - a.ndim
    out = [0] * lead
    for n, s, full in zip(a.shape, a.strides, shape[lead:]):
        if n != full and n != 1:
            raise ValueError(f"shape {a.shape} does not broadcast to {shape}")
        out.append(s if n == full and n != 1 else 0)
    return out


def simplify(shape: tuple, strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """The same index space with length-1 axes moved to the front and neighbouring axes merged
    where every operand steps through them as one; the rank is kept (padded with 1s)."""
    nd = len(shape)
    dims: list[int] = []
    strd: list[list[int]] = [[] for _ in strides]
    for a in range(nd):
        if shape[a] == 1:
            continue
        if dims and all(s[-1] == st[a] * shape[a] for s, st in zip(strd, strides)):
            dims[-1] *= shape[a]
            for s, st in zip(strd, strides):
                s[-1] = st[a]
            continue
        dims.append(shape[a])
        for s, st in zip(strd, strides):
            s.append(st[a])
    pad = nd - len(dims)
    return [1] * pad + dims, [[0] * pad + s for s in strd]
