"""GPU kernels from the kernel IR: the same expression renderer as the C backend, wrapped in the
launch structure of a data-parallel device (OpenCL and CUDA differ only in their Dialect).

- Elementwise kernels come in two versions: `<name>_c` (every operand contiguous with the loop's
  shape: one flat index) and `<name>_s` (any strides, broadcasting and negative strides: the flat
  index is unravelled over the loop's dims). Both are grid-stride loops.
- Reduction kernels put the kept axes first and the reduced axes last; each work-group takes one
  (output element, chunk of the reduced range) pair, accumulates a strided share per work-item and
  finishes with a tree reduction in local memory. A reduction split into several chunks writes
  partial results that a second launch of the same kind of kernel combines.
- GEMM is a tiled kernel staging TILE x TILE blocks of both operands in local memory.

Sizes and strides are in elements and are kernel arguments; offsets too, so views of one buffer
need no pointer arithmetic on the host.
"""

from __future__ import annotations

from theanine.codegen.cstyle import CStyleRenderer, Dialect, combine, reduce_identity
from theanine.codegen.ir import Kernel

WORKGROUP = 256  # work-items per group for elementwise and reduction kernels (a power of two)
TILE = 16  # GEMM tile edge


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

    def __init__(self, dialect: GpuDialect, workgroup: int = WORKGROUP):
        self.d = dialect
        self.r = CStyleRenderer(dialect)
        self.workgroup = workgroup

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
        """`<name>_c(n, out ptr, out offset..., in ptr, in offset..., params)` and
        `<name>_s(n, dims..., out ptr, offset, strides..., in ptr, offset, strides..., params)`."""
        d = self.d
        nd = k.ndim
        outs = [(f"O{j}", dt) for j, dt in enumerate(k.output_dtypes)]
        ins = [(f"I{b}", dt) for b, (dt, _) in enumerate(k.inputs)]
        loop = f"for (int64_t i = {d.global_id(0)}; i < n; i += {d.global_size(0)})"
        # contiguous version
        args = ["const int64_t n"]
        for name, dt in outs:
            args += [self._ptr(dt, name, False), f"const int64_t off{name}"]
        for name, dt in ins:
            args += [self._ptr(dt, name, True), f"const int64_t off{name}"]
        args += self._params(k)
        body, values = self._body(k, "offI{b} + i")
        lines = [f"{d.kernel_qualifier} {k.name}_c({', '.join(args)})", "{", f"    {loop} {{"]
        lines += [f"        {b}" for b in body]
        lines += [f"        O{j}[offO{j} + i] = {v};" for j, v in enumerate(values)]
        lines += ["    }", "}"]
        # strided version
        args = ["const int64_t n"] + [f"const int64_t d{a}" for a in range(nd)]
        for name, dt in outs + ins:
            args += [self._ptr(dt, name, name.startswith("I")), f"const int64_t off{name}"]
            args += [f"const int64_t s{name}_{a}" for a in range(nd)]
        args += self._params(k)
        strides = {name: [f"s{name}_{a}" for a in range(nd)] for name, _ in outs + ins}
        body, values = self._body(k, "pos_I{b}")
        lines += [f"{d.kernel_qualifier} {k.name}_s({', '.join(args)})", "{", f"    {loop} {{"]
        lines += [f"        int64_t pos_{name} = off{name};" for name, _ in outs + ins]
        lines += ["        " + x for x in self._unravel("i", [f"d{a}" for a in range(nd)],
                                                        strides)]
        lines += [f"        {b}" for b in body]
        lines += [f"        O{j}[pos_O{j}] = {v};" for j, v in enumerate(values)]
        lines += ["    }", "}"]
        return "\n".join(lines)

    # -- reductions --------------------------------------------------------------------------
    def reduction(self, k: Kernel) -> str:
        """`<name>(n_out, n_red, n_chunks, chunk, keep dims..., reduced dims..., out ptr, out
        offset, in ptr, offset, keep strides..., reduced strides..., params)`: the loop space's
        kept axes come first and its reduced axes last (the launcher permutes them)."""
        d = self.d
        nk = k.ndim - len(k.reduce_axes)
        nr = len(k.reduce_axes)
        acc_t = d.type(k.acc_dtype)
        op = k.reduce_op
        wg = self.workgroup
        args = ["const int64_t n_out", "const int64_t n_red", "const int64_t n_chunks",
                "const int64_t chunk"]
        args += [f"const int64_t k{a}" for a in range(nk)]
        args += [f"const int64_t r{a}" for a in range(nr)]
        args += [self._ptr(k.acc_dtype, "O0", False), "const int64_t offO0"]
        ins = [f"I{b}" for b in range(len(k.inputs))]
        for b, (dt, _) in enumerate(k.inputs):
            args += [self._ptr(dt, f"I{b}", True), f"const int64_t offI{b}"]
            args += [f"const int64_t ks{b}_{a}" for a in range(nk)]
            args += [f"const int64_t rs{b}_{a}" for a in range(nr)]
        args += self._params(k)
        ident = reduce_identity(op, k.acc_dtype, d)
        body, values = self._body(k, "pos_I{b}")
        lid, lsz = d.local_id(0), wg
        lines = [f"{d.kernel_qualifier} {k.name}({', '.join(args)})", "{",
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
