"""GPU kernels from the kernel IR: the same expression renderer as the C backend, wrapped in the
launch structure of a data-parallel device (OpenCL and CUDA differ only in their Dialect).

- Elementwise kernels come in two versions: contiguous (every operand contiguous with the loop's
  shape: one flat index) and strided (any strides, broadcasting and negative strides: the flat
  index is unravelled over the loop's dims). Both are grid-stride loops.
- Reduction kernels put the kept axes first and the reduced axes last; each work-group takes one
  (output element, chunk of the reduced range) pair, accumulates a strided share per work-item and
  finishes with a tree reduction in local memory. A reduction split into several chunks writes
  partial results that a second launch of the same kind of kernel combines.
- For CPU devices (`cpu=True`) the same signatures hold loops shaped for a CPU compiler: an
  elementwise work-item takes a run of CPU_RUN elements (along the last axis when strided) in a
  plain loop it can vectorize, and a reduction work-item folds one (output, chunk) pair alone
  with per-axis counters, with no local memory or barriers (which PoCL compiles slowly).
- GEMM is a tiled kernel staging TILE x TILE blocks of both operands in local memory.

Sizes and strides are in elements and are kernel arguments; offsets too, so views of one buffer
need no pointer arithmetic on the host. Programs name kernels after their text
(`content_named`), never after their place in a graph. Each kernel comes with its parameter list
(a KernelSource), which runtimes that pack arguments themselves (CUDA) use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from theanine.codegen.cstyle import Dialect, accumulator_dtype, combine, reduce_identity
from theanine.codegen.ir import Kernel
from theanine.codegen.skeleton import KernelArg, KernelSource, SkeletonRenderer, int64_arg

WORKGROUP = 256  # work-items per group for elementwise and reduction kernels (a power of two)
TILE = 16  # GEMM tile edge
CPU_RUN = 1024  # elements one work-item of a CPU device takes in an elementwise kernel
_PLACEHOLDER = "TH_KERNEL_NAME"


def content_named(render: Callable[[str], KernelSource], kind: str) -> tuple[str, KernelSource]:
    """(name, source) of the kernel function `render(name)` prints, named `th_<kind>_<hash of
    its text>`: the same kernel gets the same name and source in every program, so the
    in-process, driver and on-disk caches all find it however the graph placed it."""
    source = render(_PLACEHOLDER)
    name = f"th_{kind}_{hashlib.sha256(source.text.encode()).hexdigest()[:20]}"
    return name, KernelSource(source.text.replace(_PLACEHOLDER, name), source.args)


class GpuDialect(Dialect):
    """What a data-parallel C dialect adds: qualifiers, work-item indices, local memory (these
    defaults are OpenCL's)."""

    kernel_qualifier = "__kernel void"
    global_ptr = "__global "
    local_qualifier = "__local"
    barrier = "barrier(CLK_LOCAL_MEM_FENCE);"
    work_items = {"local_id": "(int64_t)get_local_id({axis})",
                  "group_id": "(int64_t)get_group_id({axis})",
                  "num_groups": "(int64_t)get_num_groups({axis})",
                  "global_id": "(int64_t)get_global_id({axis})",
                  "global_size": "(int64_t)get_global_size({axis})"}


class GpuRenderer(SkeletonRenderer):
    """Prints kernel IR as device kernels through a GpuDialect."""

    def __init__(self, dialect: GpuDialect, workgroup: int = WORKGROUP, cpu: bool = False):
        super().__init__(dialect)
        self.workgroup = workgroup
        self.cpu = cpu  # kernels for a CPU device: each work-item loops over a run of elements

    # -- pieces ------------------------------------------------------------------------------
    def _body(self, k: Kernel, index: str, contiguous: bool = False) -> tuple[list[str],
                                                                          list[str]]:
        """The body reading input b at position `index` (a format of b); an index operand
        is the position itself, and in a contiguous kernel an input of one element is read
        at its offset."""
        def load(b, dt):
            if contiguous and b in k.scalar_inputs:
                return f"I{b}[offI{b}]"
            return f"I{b}[{index.format(b=b)}]"

        return self.r.body(k, load, lambda j: f"P{j}",
                           lambda b: f"((uint64_t)({index.format(b=b)}))")

    @staticmethod
    def _with_offsets(operands: list[KernelArg]) -> list[KernelArg]:
        """Each array parameter followed by its offset off<name>."""
        return [a for op in operands for a in (op, int64_arg(f"off{op.name}"))]

    @staticmethod
    def _unravel(flat: str, dims: list[str], strides: dict[str, list[str]]) -> list[str]:
        """Statements turning `flat` into per-operand element positions pos_<name> (which must
        start at the operand's offset), last dim fastest; length-1 dims are skipped."""
        lines = [f"int64_t r_ = {flat};"]
        for a in reversed(range(len(dims))):
            adds = " ".join(f"pos_{n} += x_ * {s[a]};" for n, s in strides.items())
            lines.append(f"if ({dims[a]} != 1) {{ const int64_t x_ = r_ % {dims[a]}; "
                         f"r_ /= {dims[a]}; {adds} }}")
        return lines

    # -- elementwise -------------------------------------------------------------------------
    def contiguous(self, k: Kernel, name: str) -> KernelSource:
        """`name(n, out ptr, out offset..., in ptr, in offset..., params)`: every operand
        contiguous with the loop's shape, one flat index (on a CPU device, work-item g takes
        elements [g * CPU_RUN, (g + 1) * CPU_RUN): a plain loop the compiler vectorizes)."""
        args = [int64_arg("n"), *self._with_offsets(self.outputs(k.output_dtypes)),
                *self._with_offsets(self.inputs(k)), *self.params(k)]
        body, values = self._body(k, "offI{b} + i", contiguous=True)
        if self.cpu:
            lines = [f"    const int64_t start = {self.d.work_item('global_id')} * {CPU_RUN};",
                     f"    const int64_t stop = start + {CPU_RUN} < n ? start + {CPU_RUN} : n;",
                     "    for (int64_t i = start; i < stop; ++i) {"]
        else:
            lines = [f"    {self.loop()} {{"]
        lines += [f"        {b}" for b in body]
        lines += ["        " + x for x in self.stores(values, lambda j: f"O{j}[offO{j} + i]")]
        lines.append("    }")
        return self.function(name, args, lines)

    def strided(self, k: Kernel, name: str) -> KernelSource:
        """`name(n, dims..., out ptr, offset, strides..., in ptr, offset, strides..., params)`:
        any strides, broadcasting and negative strides (on a CPU device, work-item g takes a
        run of up to CPU_RUN elements along the last axis, stepping each operand by its
        stride)."""
        nd = k.ndim
        operands = self.outputs(k.output_dtypes) + self.inputs(k)
        args = [int64_arg("n")] + [int64_arg(f"d{a}") for a in range(nd)]
        for op in operands:
            args += [op, int64_arg(f"off{op.name}")]
            args += [int64_arg(f"s{op.name}_{a}") for a in range(nd)]
        args += self.params(k)
        strides = {op.name: [f"s{op.name}_{a}" for a in range(nd)] for op in operands}
        body, values = self._body(k, "pos_I{b}")
        stores = self.stores(values, lambda j: f"O{j}[pos_O{j}]")
        lines = []
        if self.cpu and nd:
            last = f"d{nd - 1}"
            lines += [f"    const int64_t runs = ({last} + {CPU_RUN - 1}) / {CPU_RUN};",
                      f"    const int64_t g = {self.d.work_item('global_id')};",
                      f"    if (g >= n / {last} * runs) return;",
                      f"    const int64_t start = g % runs * {CPU_RUN};",
                      f"    const int64_t stop = start + {CPU_RUN} < {last} ? "
                      f"start + {CPU_RUN} : {last};"]
            lines += [f"    int64_t pos_{op} = off{op} + start * {s[-1]};"
                      for op, s in strides.items()]
            lines += ["    " + x for x in self._unravel(
                "g / runs", [f"d{a}" for a in range(nd - 1)],
                {op: s[:-1] for op, s in strides.items()})]
            lines.append("    for (int64_t j = start; j < stop; ++j) {")
            lines += [f"        {b}" for b in body]
            lines += ["        " + x for x in stores]
            lines += ["        " + " ".join(f"pos_{op} += {s[-1]};"
                                            for op, s in strides.items()), "    }"]
            return self.function(name, args, lines)
        lines.append(f"    {self.loop()} {{")
        lines += [f"        int64_t pos_{op} = off{op};" for op in strides]
        lines += ["        " + x for x in self._unravel("i", [f"d{a}" for a in range(nd)],
                                                        strides)]
        lines += [f"        {b}" for b in body]
        lines += ["        " + x for x in stores]
        lines.append("    }")
        return self.function(name, args, lines)

    # -- reductions --------------------------------------------------------------------------
    def reduction(self, k: Kernel, name: str | None = None) -> KernelSource:
        """`name(n_out, n_red, n_chunks, chunk, keep dims..., reduced dims..., out ptr, out
        offset, in ptr, offset, keep strides..., reduced strides..., params)` (name: k.name by
        default): the loop space's kept axes come first and its reduced axes last (the launcher
        permutes them). Output element g = (o, c) holds chunk c of output o's reduced range."""
        args, ins = self._reduction_args(k)
        if self.cpu:
            return self._serial_reduction(k, name or k.name, args, ins)
        d = self.d
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        acc_t = d.type(k.acc_dtype)
        op = k.reduce_op
        wg = self.workgroup
        ident = reduce_identity(op, k.acc_dtype, d)
        body, values = self._body(k, "pos_I{b}")
        lid, lsz = d.work_item("local_id"), wg
        lines = [f"    {d.local_qualifier} {acc_t} part[{wg}];",
                 f"    const int64_t lid = {lid};",
                 f"    for (int64_t g = {d.work_item('group_id')}; g < n_out * n_chunks; "
                 f"g += {d.work_item('num_groups')}) {{",
                 "        const int64_t o = g / n_chunks, c = g % n_chunks;"]
        lines += [f"        int64_t pos_{n} = off{n};" for n in ins]
        lines += ["        " + x for x in self._unravel(
            "o", [f"k{a}" for a in range(nk)],
            {n: [f"ks{b}_{a}" for a in range(nk)] for b, n in enumerate(ins)})]
        lines += [f"        const int64_t base_{n} = pos_{n};" for n in ins]
        lines += [f"        {acc_t} acc = {ident};",
                  "        const int64_t stop = (c + 1) * chunk < n_red ? (c + 1) * chunk : "
                  "n_red;",
                  f"        for (int64_t j = c * chunk + lid; j < stop; j += {lsz}) {{"]
        lines += [f"            pos_{n} = base_{n};" for n in ins]
        lines += ["            " + x for x in self._unravel(
            "j", [f"r{a}" for a in range(nr)],
            {n: [f"rs{b}_{a}" for a in range(nr)] for b, n in enumerate(ins)})]
        lines += [f"            {b}" for b in body]
        lines += [f"            acc = {combine(op, 'acc', values[0], k.acc_dtype, d)};",
                  "        }"]
        lines += ["        " + x for x in self.group_reduce(op, k.acc_dtype)]
        lines.append("    }")
        return self.function(name or k.name, args, lines)

    def _reduction_args(self, k: Kernel) -> tuple[list[KernelArg], list[str]]:
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        args = [int64_arg(n) for n in ("n_out", "n_red", "n_chunks", "chunk")]
        args += [int64_arg(f"k{a}") for a in range(nk)]
        args += [int64_arg(f"r{a}") for a in range(nr)]
        args += self._with_offsets(self.outputs([k.acc_dtype]))
        ins = self.inputs(k)
        for b, op in enumerate(ins):
            args += [op, int64_arg(f"off{op.name}")]
            args += [int64_arg(f"ks{b}_{a}") for a in range(nk)]
            args += [int64_arg(f"rs{b}_{a}") for a in range(nr)]
        return args + self.params(k), [op.name for op in ins]

    def _serial_reduction(self, k: Kernel, name: str, args: list[KernelArg],
                          ins: list[str]) -> KernelSource:
        """The reduction for CPU devices: each work-item folds one (output, chunk) pair alone,
        stepping through the chunk with per-axis counters (no division per element), with no
        local memory and no barriers, which CPU OpenCL compilers handle far faster."""
        d = self.d
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        op = k.reduce_op
        body, values = self._body(k, "pos_I{b}")
        lines = [f"    {self.loop('n_out * n_chunks', 'g')} {{",
                 "        const int64_t o = g / n_chunks, c = g % n_chunks;",
                 "        const int64_t start = c * chunk;",
                 "        const int64_t stop = start + chunk < n_red ? start + chunk : n_red;"]
        lines += [f"        int64_t pos_{n} = off{n};" for n in ins]
        lines += ["        " + x for x in self._unravel(
            "o", [f"k{a}" for a in range(nk)],
            {n: [f"ks{b}_{a}" for a in range(nk)] for b, n in enumerate(ins)})]
        acc_t = d.type(accumulator_dtype(op, k.acc_dtype, d))
        lines += [f"        {acc_t} acc = {reduce_identity(op, k.acc_dtype, d)};",
                  "        if (start < stop) {", "            int64_t q_ = start;"]
        for a in reversed(range(nr)):
            adds = " ".join(f"pos_{n} += i{a} * rs{b}_{a};" for b, n in enumerate(ins))
            lines.append(f"            int64_t i{a} = q_ % r{a}; q_ /= r{a}; {adds}")
        lines.append("            for (int64_t j = start; j < stop; ++j) {")
        lines += [f"                {b}" for b in body]
        lines.append(f"                acc = {combine(op, 'acc', values[0], k.acc_dtype, d)};")
        lines += ["                " + x for x in self._advance(nr, ins)]
        lines.append("            }")
        lines += ["        }", f"        O0[offO0 + g] = ({d.type(k.acc_dtype)})acc;", "    }"]
        return self.function(name, args, lines)

    @staticmethod
    def _advance(nr: int, ins: list[str]) -> list[str]:
        """Statements stepping the reduced-axis counters i<a> (and every pos_<input>) to the
        next element in row-major order."""
        lines: list[str] = []
        for a in reversed(range(nr)):
            step = " ".join(f"pos_{n} += rs{b}_{a};" for b, n in enumerate(ins))
            back = " ".join(f"pos_{n} -= r{a} * rs{b}_{a};" for b, n in enumerate(ins))
            pad = "    " * (nr - 1 - a)
            lines.append(f"{pad}{step} if (++i{a} == r{a}) {{ i{a} = 0; {back}")
        lines += ["    " * a + "}" for a in reversed(range(nr))]
        return lines

    def group_reduce(self, op: str, dtype: str) -> list[str]:
        """Statements merging every work-item's `acc` into O0[offO0 + g] (a tree in the local
        array `part`), ending on a barrier so `part` can be reused; a dialect with a faster
        in-group exchange (CUDA's warp shuffles) overrides this."""
        d, wg = self.d, self.workgroup
        return ["part[lid] = acc;", d.barrier,
                f"for (int64_t h = {wg // 2}; h > 0; h >>= 1) {{",
                "    if (lid < h) part[lid] = "
                f"{combine(op, 'part[lid]', 'part[lid + h]', dtype, d)};",
                f"    {d.barrier}", "}",
                "if (lid == 0) O0[offO0 + g] = part[0];", d.barrier]

    # -- GEMM --------------------------------------------------------------------------------
    def gemm(self, name: str, dtype: str) -> KernelSource:
        """`name(M, N, K, alpha, beta, A, offA, sA0, sA1, B, offB, sB0, sB1, Z, offZ, sZ0, sZ1,
        C, offC)`: C = alpha * A @ B + beta * Z for a contiguous (M, N) C; Z may broadcast
        (stride 0) and is not read when beta is 0. Launch with TILE x TILE work-groups."""
        d = self.d
        t = d.type(dtype)
        ts = TILE
        args = [int64_arg("M"), int64_arg("N"), int64_arg("K"), KernelArg("alpha", dtype),
                KernelArg("beta", dtype)]
        for name_ in "ABZ":
            args += [KernelArg(name_, dtype, pointer=True), int64_arg(f"off{name_}"),
                     int64_arg(f"s{name_}0"), int64_arg(f"s{name_}1")]
        args += [KernelArg("C", dtype, pointer=True, const=False), int64_arg("offC")]
        zero = self.r.literal(0, dtype)
        item = d.work_item
        lines = [f"    {d.local_qualifier} {t} As[{ts}][{ts + 1}];",
                 f"    {d.local_qualifier} {t} Bs[{ts}][{ts + 1}];",
                 f"    const int64_t tx = {item('local_id', 0)}, ty = {item('local_id', 1)};",
                 f"    const int64_t col = {item('group_id', 0)} * {ts} + tx;",
                 f"    const int64_t row = {item('group_id', 1)} * {ts} + ty;",
                 f"    {t} acc = {zero};",
                 f"    for (int64_t k0 = 0; k0 < K; k0 += {ts}) {{",
                 f"        As[ty][tx] = (row < M && k0 + tx < K) ? "
                 f"A[offA + row * sA0 + (k0 + tx) * sA1] : {zero};",
                 f"        Bs[ty][tx] = (k0 + ty < K && col < N) ? "
                 f"B[offB + (k0 + ty) * sB0 + col * sB1] : {zero};",
                 f"        {d.barrier}",
                 f"        for (int kk = 0; kk < {ts}; ++kk) acc += As[ty][kk] * Bs[kk][tx];",
                 f"        {d.barrier}",
                 "    }",
                 "    if (row < M && col < N) {",
                 f"        {t} v = alpha * acc;",
                 "        if (beta != 0) v += beta * Z[offZ + row * sZ0 + col * sZ1];",
                 "        C[offC + row * N + col] = v;",
                 "    }"]
        return self.function(name, args, lines)
