"""The clang dialect of theanine's C-style renderer, and the kernel functions it prints.

A kernel is one C function over an N-d loop space given by shape and byte strides (0 along
broadcast axes), so strided, broadcast and reversed inputs need no copies. The last axis is the
inner loop: a contiguous version with `restrict` pointers that clang's loop vectorizer is told
to vectorize, and a strided one. A reduction writes into an accumulator array whose strides are
0 along the reduced axes; a run along a reduced axis accumulates in a register first.
"""

from __future__ import annotations

from theanine.codegen import cstyle
from theanine.codegen.cstyle import C_TYPES, CStyleRenderer, Dialect, combine
from theanine.codegen.ir import Kernel

HEADER = """#include <math.h>
#include <stdint.h>
typedef unsigned char npy_bool;
"""
class ClangDialect(Dialect):
    """C11 for clang: helpers forced inline, no OpenMP."""

    name = "clang"
    type_names = C_TYPES
    fn_qualifier = "static inline __attribute__((always_inline, unused))"
    header = HEADER


def accumulator_dtype(kernel: Kernel) -> str:
    """The dtype of a reduction's accumulator array: theanine's rule for the C-style dialects
    (float32 sums in double, as NumPy's pairwise sums keep the digits)."""
    return cstyle.accumulator_dtype(kernel.reduce_op, kernel.acc_dtype, ClangDialect())


class KernelPrinter:
    """Prints kernel IR as `void NAME(const int64_t *shape, char *const *base,
    const int64_t *strides, const void *const *params)`: operands are the outputs (for a
    reduction, its accumulator) then the inputs; strides[op * ndim + axis] in bytes."""

    def __init__(self):
        self.dialect = ClangDialect()
        self.r = CStyleRenderer(self.dialect)

    def source(self, kernels: list[Kernel]) -> str:
        """One translation unit defining every kernel."""
        bodies = "\n".join(self.kernel(k) for k in kernels)
        return self.dialect.prelude(bodies) + "\n" + bodies

    def kernel(self, k: Kernel) -> str:
        t = self.dialect.type
        nd = max(k.ndim, 1)
        n_out = 1 if k.is_reduction else len(k.outputs)
        out_types = [accumulator_dtype(k)] if k.is_reduction else k.output_dtypes
        nop = n_out + len(k.inputs)
        lines = [f"void {k.name}(const int64_t *shape, char *const *base, const int64_t *strides,"
                 " const void *const *params)", "{"]
        lines += [f"    const {t(dt)} P{j} = *(const {t(dt)} *)params[{j}];"
                  for j, dt in enumerate(k.params)]
        lines += [f"    const int64_t n = shape[{nd - 1}];",
                  f"    int64_t idx[{nd}] = {{0}};",
                  f"    char *q[{nop}];", f"    int64_t s[{nop}];",
                  f"    for (int j = 0; j < {nop}; ++j) s[j] = strides[j * {nd} + {nd - 1}];",
                  "    for (;;) {",
                  f"        for (int j = 0; j < {nop}; ++j) {{",
                  "            q[j] = base[j];",
                  f"            for (int d = 0; d < {nd - 1}; ++d) "
                  f"q[j] += idx[d] * strides[j * {nd} + d];",
                  "        }"]
        if k.is_reduction:
            lines += self._reduce_run(k, n_out, out_types[0])
        else:
            lines += self._elementwise_run(k, n_out, out_types)
        lines += [f"        int d = {nd - 2};",
                  "        while (d >= 0 && ++idx[d] == shape[d]) idx[d--] = 0;",
                  "        if (d < 0) break;", "    }", "}"]
        return "\n".join(lines)

    def _loads(self, n_out: int, contiguous: bool):
        t = self.dialect.type
        if contiguous:
            return lambda b, dt: f"I{b}[i]"
        return lambda b, dt: f"*(const {t(dt)} *)(q[{n_out + b}] + i * s[{n_out + b}])"

    def _contiguous_test(self, k: Kernel, n_out: int, out_types: list[str]) -> str:
        t = self.dialect.type
        types = out_types + [dt for dt, _ in k.inputs]
        return " && ".join(f"s[{j}] == sizeof({t(dt)})" for j, dt in enumerate(types)) or "1"

    def _pointers(self, k: Kernel, n_out: int, out_types: list[str]) -> list[str]:
        t = self.dialect.type
        lines = [f"{t(dt)} *restrict O{j} = ({t(dt)} *)q[{j}];" for j, dt in enumerate(out_types)]
        lines += [f"const {t(dt)} *restrict I{b} = (const {t(dt)} *)q[{n_out + b}];"
                  for b, (dt, _) in enumerate(k.inputs)]
        return lines

    @staticmethod
    def _loop(body: list[str], vectorize: bool) -> list[str]:
        pragma = ["#pragma clang loop vectorize(enable) interleave(enable)"] if vectorize else []
        return [*pragma, "for (int64_t i = 0; i < n; ++i) {", *["    " + b for b in body], "}"]

    @staticmethod
    def _indent(lines: list[str], depth: int) -> list[str]:
        return ["    " * depth + x for x in lines]

    def _elementwise_run(self, k: Kernel, n_out: int, out_types: list[str]) -> list[str]:
        t = self.dialect.type
        lines = [f"        if ({self._contiguous_test(k, n_out, out_types)}) {{"]
        body, outs = self.r.body(k, self._loads(n_out, True), lambda j: f"P{j}")
        stores = [f"O{j}[i] = {o};" for j, o in enumerate(outs)]
        lines += self._indent(self._pointers(k, n_out, out_types), 3)
        lines += self._indent(self._loop(body + stores, True), 3)
        lines.append("        } else {")
        body, outs = self.r.body(k, self._loads(n_out, False), lambda j: f"P{j}")
        stores = [f"*({t(dt)} *)(q[{j}] + i * s[{j}]) = {o};"
                  for j, (o, dt) in enumerate(zip(outs, out_types))]
        lines += self._indent(self._loop(body + stores, False), 3)
        lines.append("        }")
        return lines

    def _reduce_run(self, k: Kernel, n_out: int, acc: str) -> list[str]:
        t, d, op = self.dialect.type, self.dialect, k.reduce_op
        lines = ["        if (s[0] == 0) {", f"            {t(acc)} acc = *({t(acc)} *)q[0];"]
        body, outs = self.r.body(k, self._loads(n_out, False), lambda j: f"P{j}")
        step = f"acc = {combine(op, 'acc', outs[0], acc, d)};"
        lines += self._indent(self._loop([*body, step], False), 3)
        lines += [f"            *({t(acc)} *)q[0] = acc;", "        } else {"]
        body, outs = self.r.body(k, self._loads(n_out, False), lambda j: f"P{j}")
        cell = f"(*({t(acc)} *)(q[0] + i * s[0]))"
        step = f"{cell} = {combine(op, cell, outs[0], acc, d)};"
        lines += self._indent(self._loop([*body, step], False), 3)
        lines.append("        }")
        return lines
