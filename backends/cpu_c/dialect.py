"""The C dialect: kernels are inner-loop functions over a run of elements (NumPy's ufunc
model), called by runtime.h once per run; a contiguous version of each loop is vectorized."""

from __future__ import annotations

from theanine.codegen.cstyle import C_TYPES, CStyleRenderer, Dialect
from theanine.codegen.ir import Kernel

REDUCE_IDENTITY_FLOAT = {"add": "0", "mul": "1", "max": "-INFINITY", "min": "INFINITY",
                         "and": "1", "or": "0"}
INT_LIMITS = {"int8": ("INT8_MIN", "INT8_MAX"), "int16": ("INT16_MIN", "INT16_MAX"),
              "int32": ("INT32_MIN", "INT32_MAX"), "int64": ("INT64_MIN", "INT64_MAX"),
              "uint8": ("0", "UINT8_MAX"), "uint16": ("0", "UINT16_MAX"),
              "uint32": ("0", "UINT32_MAX"), "uint64": ("0", "UINT64_MAX"),
              "bool": ("0", "1")}


class CDialect(Dialect):
    """Plain C99 with OpenMP."""

    name = "c"
    kernel_prefix = "static"
    restrict = "restrict"
    type_names = C_TYPES


def reduce_identity(op: str, dtype: str) -> str:
    """C text of the neutral element of reduction `op` in `dtype`."""
    if op in ("max", "min") and not dtype.startswith("float"):
        lo, hi = INT_LIMITS[dtype]
        return lo if op == "max" else hi
    return REDUCE_IDENTITY_FLOAT[op]


def combine(op: str, acc: str, value: str, dtype: str, d: Dialect) -> str:
    """C text merging `value` into accumulator `acc`."""
    if op == "add":
        return f"{acc} + {value}"
    if op == "mul":
        return f"{acc} * {value}"
    if op in ("max", "min"):
        return f"{d.helper(op, dtype)}({acc}, {value})"
    if op == "and":
        return f"({acc} && {value})"
    return f"({acc} || {value})"


class CKernelRenderer:
    """Renders kernel IR as C inner-loop functions for runtime.h."""

    def __init__(self):
        self.dialect = CDialect()
        self.r = CStyleRenderer(self.dialect)

    def _prologue(self, k: Kernel) -> list[str]:
        t = self.dialect.type
        return [f"    const {t(dt)} P{j} = *(const {t(dt)} *)prm[{j}];"
                for j, dt in enumerate(k.params)]

    def _loop_body(self, k: Kernel, n_out: int, contiguous: bool) -> tuple[list[str], list[str]]:
        t = self.dialect.type
        if contiguous:
            def load(b, dt):
                return f"((const {t(dt)} *)p[{n_out + b}])[i]"
        else:
            def load(b, dt):
                return f"*(const {t(dt)} *)(p[{n_out + b}] + i * s[{n_out + b}])"
        return self.r.body(k, load, lambda j: f"P{j}")

    def _contiguous_test(self, k: Kernel, n_out: int, out_dtypes: list[str]) -> str:
        sizes = [f"sizeof({self.dialect.type(dt)})" for dt in out_dtypes] + \
            [f"sizeof({self.dialect.type(dt)})" for dt, _ in k.inputs]
        return " && ".join(f"s[{j}] == {size}" for j, size in enumerate(sizes)) or "1"

    def elementwise(self, k: Kernel) -> str:
        """An elementwise kernel: writes every output at each index of the run."""
        t = self.dialect.type
        n_out = len(k.outputs)
        lines = [f"static void {k.name}(int64_t n, char **p, const int64_t *s, "
                 f"const void *params)", "{",
                 "    const char *const *prm = (const char *const *)params;", "    (void)prm;"]
        lines += self._prologue(k)
        test = self._contiguous_test(k, n_out, k.output_dtypes)
        for contiguous in (True, False):
            body, outs = self._loop_body(k, n_out, contiguous)
            lines.append(f"    {'if (' + test + ') {' if contiguous else 'else {'}")
            if contiguous:
                lines.append("        #pragma omp simd")
            lines.append("        for (int64_t i = 0; i < n; ++i) {")
            lines += [f"            {b}" for b in body]
            for j, (name, dt) in enumerate(zip(outs, k.output_dtypes)):
                target = (f"(({t(dt)} *)p[{j}])[i]" if contiguous
                          else f"*({t(dt)} *)(p[{j}] + i * s[{j}])")
                lines.append(f"            {target} = {name};")
            lines += ["        }", "    }"]
        lines.append("}")
        return "\n".join(lines)

    def reduction(self, k: Kernel) -> str:
        """A reduction kernel: operand 0 is the output (stride 0 along reduced axes)."""
        t = self.dialect.type
        acc_t = t(k.acc_dtype)
        op = k.reduce_op
        lines = [f"static void {k.name}(int64_t n, char **p, const int64_t *s, "
                 f"const void *params)", "{",
                 "    const char *const *prm = (const char *const *)params;", "    (void)prm;"]
        lines += self._prologue(k)
        in_test = " && ".join(f"s[{1 + j}] == sizeof({t(dt)})" for j, (dt, _) in
                              enumerate(k.inputs)) or "1"
        simd = "#pragma omp simd reduction(+:acc)" if op == "add" else \
            "#pragma omp simd reduction(*:acc)" if op == "mul" else ""
        lines.append("    if (s[0] == 0) {")
        lines.append(f"        {acc_t} acc = *({acc_t} *)p[0];")
        for contiguous in (True, False):
            body, outs = self._loop_body(k, 1, contiguous)
            lines.append(f"        {'if (' + in_test + ') {' if contiguous else 'else {'}")
            if contiguous and simd:
                lines.append(f"            {simd}")
            lines.append("            for (int64_t i = 0; i < n; ++i) {")
            lines += [f"                {b}" for b in body]
            step = combine(op, "acc", outs[0], k.acc_dtype, self.dialect)
            lines.append(f"                acc = {step};")
            lines += ["            }", "        }"]
        lines.append(f"        *({acc_t} *)p[0] = acc;")
        lines.append("    } else {")
        body, outs = self._loop_body(k, 1, False)
        lines.append("        for (int64_t i = 0; i < n; ++i) {")
        lines += [f"            {b}" for b in body]
        lines.append(f"            {acc_t} *o = ({acc_t} *)(p[0] + i * s[0]);")
        lines.append(f"            *o = {combine(op, '*o', outs[0], k.acc_dtype, self.dialect)};")
        lines += ["        }", "    }", "}"]
        lines.append(f"static void {k.name}_combine(int64_t n, char *dst, const char *src)")
        lines.append("{")
        lines.append(f"    {acc_t} *d = ({acc_t} *)dst; const {acc_t} *q = (const {acc_t} *)src;")
        lines.append("    for (int64_t i = 0; i < n; ++i) "
                     f"d[i] = {combine(op, 'd[i]', 'q[i]', k.acc_dtype, self.dialect)};")
        lines.append("}")
        return "\n".join(lines)
