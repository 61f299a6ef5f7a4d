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
(`content_named`), never after their place in a graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from theanine.codegen.cstyle import (
    CStyleRenderer,
    Dialect,
    accumulator_dtype,
    combine,
    reduce_identity,
)
from theanine.codegen.ir import Kernel

WORKGROUP = 256  # work-items per group for elementwise and reduction kernels (a power of two)
TILE = 16  # GEMM tile edge
CPU_RUN = 1024  # elements one work-item of a CPU device takes in an elementwise kernel
_PLACEHOLDER = "TH_KERNEL_NAME"


def content_named(render: Callable[[str], str], kind: str) -> tuple[str, str]:
    """(name, text) of the kernel function `render(name)` prints, named `th_<kind>_<hash of its
    text>`: the same kernel gets the same name and source in every program, so the in-process,
    driver and on-disk caches all find it however the graph placed it."""
    text = render(_PLACEHOLDER)
    name = f"th_{kind}_{hashlib.sha256(text.encode()).hexdigest()[:20]}"
    return name, text.replace(_PLACEHOLDER, name)


class GpuDialect(Dialect):
    """What a data-parallel C dialect adds: qualifiers, thread indices, local memory."""

    kernel_qualifier = "__kernel void"
    global_ptr = "__global "
    local_qualifier = "__local"
    barrier = "barrier(CLK_LOCAL_MEM_FENCE);"

    def local_id(self, d: int) -> str:
        return f"(int64_t)get_local_id({d})"

    def group_id(self, d: int) -> str:
        return f"(int64_t)get_group_id({d})"

    def local_size(self, d: int) -> str:
        return f"(int64_t)get_local_size({d})"

    def num_groups(self, d: int) -> str:
        return f"(int64_t)get_num_groups({d})"

    def global_id(self, d: int) -> str:
        return f"(int64_t)get_global_id({d})"

    def global_size(self, d: int) -> str:
        return f"(int64_t)get_global_size({d})"


class GpuRenderer:
    """Prints kernel IR as device kernels through a GpuDialect."""

    def __init__(self, dialect: GpuDialect, workgroup: int = WORKGROUP, cpu: bool = False):
        self.d = dialect
        self.r = CStyleRenderer(dialect)
        self.workgroup = workgroup
        self.cpu = cpu  # kernels for a CPU device: each work-item loops over a run of elements

    # -- pieces ------------------------------------------------------------------------------
    def _ptr(self, dtype: str, name: str, const: bool) -> str:
        c = "const " if const else ""
        return f"{self.d.global_ptr}{c}{self.d.type(dtype)} *{self.d.restrict} {name}"

    def _params(self, k: Kernel) -> list[str]:
        return [f"const {self.d.type(dt)} P{j}" for j, dt in enumerate(k.params)]

    def _body(self, k: Kernel, index: str) -> tuple[list[str], list[str]]:
        return self.r.body(k, lambda b, dt: f"I{b}[{index.format(b=b)}]", lambda j: f"P{j}")

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
    def elementwise(self, k: Kernel) -> str:
        """Both versions of `k`, named `<k.name>_c` and `<k.name>_s`."""
        return self.contiguous(k, k.name + "_c") + "\n" + self.strided(k, k.name + "_s")

    def _operands(self, k: Kernel) -> tuple[list, list]:
        return ([(f"O{j}", dt) for j, dt in enumerate(k.output_dtypes)],
                [(f"I{b}", dt) for b, (dt, _) in enumerate(k.inputs)])

    def _loop(self) -> str:
        d = self.d
        return f"for (int64_t i = {d.global_id(0)}; i < n; i += {d.global_size(0)})"

    def contiguous(self, k: Kernel, name: str) -> str:
        """`name(n, out ptr, out offset..., in ptr, in offset..., params)`: every operand
        contiguous with the loop's shape, one flat index (on a CPU device, work-item g takes
        elements [g * CPU_RUN, (g + 1) * CPU_RUN): a plain loop the compiler vectorizes)."""
        outs, ins = self._operands(k)
        args = ["const int64_t n"]
        for op, dt in outs:
            args += [self._ptr(dt, op, False), f"const int64_t off{op}"]
        for op, dt in ins:
            args += [self._ptr(dt, op, True), f"const int64_t off{op}"]
        args += self._params(k)
        body, values = self._body(k, "offI{b} + i")
        lines = [f"{self.d.kernel_qualifier} {name}({', '.join(args)})", "{"]
        if self.cpu:
            lines += [f"    const int64_t start = {self.d.global_id(0)} * {CPU_RUN};",
                      f"    const int64_t stop = start + {CPU_RUN} < n ? start + {CPU_RUN} : n;",
                      "    for (int64_t i = start; i < stop; ++i) {"]
        else:
            lines.append(f"    {self._loop()} {{")
        lines += [f"        {b}" for b in body]
        lines += [f"        O{j}[offO{j} + i] = {v};" for j, v in enumerate(values)]
        lines += ["    }", "}"]
        return "\n".join(lines)

    def strided(self, k: Kernel, name: str) -> str:
        """`name(n, dims..., out ptr, offset, strides..., in ptr, offset, strides..., params)`:
        any strides, broadcasting and negative strides (on a CPU device, work-item g takes a
        run of up to CPU_RUN elements along the last axis, stepping each operand by its
        stride)."""
        nd = k.ndim
        outs, ins = self._operands(k)
        args = ["const int64_t n"] + [f"const int64_t d{a}" for a in range(nd)]
        for op, dt in outs + ins:
            args += [self._ptr(dt, op, op.startswith("I")), f"const int64_t off{op}"]
            args += [f"const int64_t s{op}_{a}" for a in range(nd)]
        args += self._params(k)
        strides = {op: [f"s{op}_{a}" for a in range(nd)] for op, _ in outs + ins}
        body, values = self._body(k, "pos_I{b}")
        lines = [f"{self.d.kernel_qualifier} {name}({', '.join(args)})", "{"]
        if self.cpu and nd:
            last = f"d{nd - 1}"
            lines += [f"    const int64_t runs = ({last} + {CPU_RUN - 1}) / {CPU_RUN};",
                      f"    const int64_t g = {self.d.global_id(0)};",
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
            lines += [f"        O{j}[pos_O{j}] = {v};" for j, v in enumerate(values)]
            lines += ["        " + " ".join(f"pos_{op} += {s[-1]};"
                                            for op, s in strides.items()), "    }", "}"]
            return "\n".join(lines)
        lines.append(f"    {self._loop()} {{")
        lines += [f"        int64_t pos_{op} = off{op};" for op, _ in outs + ins]
        lines += ["        " + x for x in self._unravel("i", [f"d{a}" for a in range(nd)],
                                                        strides)]
        lines += [f"        {b}" for b in body]
        lines += [f"        O{j}[pos_O{j}] = {v};" for j, v in enumerate(values)]
        lines += ["    }", "}"]
        return "\n".join(lines)

    # -- reductions --------------------------------------------------------------------------
    def reduction(self, k: Kernel, name: str | None = None) -> str:
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
        lid, lsz = d.local_id(0), wg
        lines = [f"{d.kernel_qualifier} {name or k.name}({', '.join(args)})", "{",
                 f"    {d.local_qualifier} {acc_t} part[{wg}];",
                 f"    const int64_t lid = {lid};",
                 f"    for (int64_t g = {d.group_id(0)}; g < n_out * n_chunks; "
                 f"g += {d.num_groups(0)}) {{",
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
        lines += ["    }", "}"]
        return "\n".join(lines)

    def _reduction_args(self, k: Kernel) -> tuple[list[str], list[str]]:
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        args = ["const int64_t n_out", "const int64_t n_red", "const int64_t n_chunks",
                "const int64_t chunk"]
        args += [f"const int64_t k{a}" for a in range(nk)]
        args += [f"const int64_t r{a}" for a in range(nr)]
        args += [self._ptr(k.acc_dtype, "O0", False), "const int64_t offO0"]
        for b, (dt, _) in enumerate(k.inputs):
            args += [self._ptr(dt, f"I{b}", True), f"const int64_t offI{b}"]
            args += [f"const int64_t ks{b}_{a}" for a in range(nk)]
            args += [f"const int64_t rs{b}_{a}" for a in range(nr)]
        return args + self._params(k), [f"I{b}" for b in range(len(k.inputs))]

    def _serial_reduction(self, k: Kernel, name: str, args: list[str], ins: list[str]) -> str:
        """The reduction for CPU devices: each work-item folds one (output, chunk) pair alone,
        stepping through the chunk with per-axis counters (no division per element), with no
        local memory and no barriers, which CPU OpenCL compilers handle far faster."""
        d = self.d
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        op = k.reduce_op
        body, values = self._body(k, "pos_I{b}")
        lines = [f"{d.kernel_qualifier} {name}({', '.join(args)})", "{",
                 f"    for (int64_t g = {d.global_id(0)}; g < n_out * n_chunks; "
                 f"g += {d.global_size(0)}) {{",
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
        lines += ["        }", f"        O0[offO0 + g] = ({d.type(k.acc_dtype)})acc;", "    }", "}"]
        return "\n".join(lines)

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
    def gemm(self, name: str, dtype: str) -> str:
        """`name(M, N, K, alpha, beta, A, offA, sA0, sA1, B, offB, sB0, sB1, Z, offZ, sZ0, sZ1,
        C, offC)`: C = alpha * A @ B + beta * Z for a contiguous (M, N) C; Z may broadcast
        (stride 0) and is not read when beta is 0. Launch with TILE x TILE work-groups."""
        d = self.d
        t = d.type(dtype)
        ts = TILE
        args = ["const int64_t M", "const int64_t N", "const int64_t K",
                f"const {t} alpha", f"const {t} beta"]
        for name_ in "ABZ":
            args += [self._ptr(dtype, name_, True), f"const int64_t off{name_}",
                     f"const int64_t s{name_}0", f"const int64_t s{name_}1"]
        args += [self._ptr(dtype, "C", False), "const int64_t offC"]
        zero = self.r.literal(0, dtype)
        lines = [f"{d.kernel_qualifier} {name}({', '.join(args)})", "{",
                 f"    {d.local_qualifier} {t} As[{ts}][{ts + 1}];",
                 f"    {d.local_qualifier} {t} Bs[{ts}][{ts + 1}];",
                 f"    const int64_t tx = {d.local_id(0)}, ty = {d.local_id(1)};",
                 f"    const int64_t col = {d.group_id(0)} * {ts} + tx;",
                 f"    const int64_t row = {d.group_id(1)} * {ts} + ty;",
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
                 "    }", "}"]
        return "\n".join(lines)
