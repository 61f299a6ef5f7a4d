"""The text of `ProfileStats.summary()`, in Theano's layout: the function section (calls,
times, how the steps were timed, compile time by stage and pass, the slowest rewrites), then
the Class, Ops and Apply sections, each sorted by time with the share of the steps' total,
the cumulative share, the time per call and the number of calls."""

from __future__ import annotations

from typing import TextIO

from theanine.compile.profiling import STAGES, ProfileStats, class_name, op_name

N_REWRITES_TO_PRINT = 10
PLURAL = {"Class": "Classes", "Ops": "Ops"}


def write_summary(p: ProfileStats, file: TextIO, n_ops: int, n_apply: int) -> None:
    rows = p.rows()
    total = sum(r[2] for r in rows)
    _function_section(p, file, total)
    _grouped_section(p, file, "Class", class_name, total, n_ops)
    _grouped_section(p, file, "Ops", op_name, total, n_ops)
    _apply_section(file, rows, total, n_apply)


def _pct(t: float, total: float) -> float:
    return 100.0 * t / total if total > 0 else 0.0


def _function_section(p: ProfileStats, f: TextIO, total: float) -> None:
    w = f.write
    w("Function profiling\n==================\n")
    w(f"  Message: {p.message}\n")
    w(f"  Time in {p.fct_callcount} calls to Function.__call__: {p.fct_call_time:e}s\n")
    w(f"  Time in steps: {total:e}s ({_pct(total, p.fct_call_time):.3f}%)\n")
    for tb in p.tables:
        w(f"    {tb.backend} steps timed by {tb.timer}\n")
    w(f"  Total compile time: {p.compile_time:e}s\n")
    for stage, title in STAGES.items():
        parts = {name: t for (s, name), t in p.phases.items() if s == stage}
        if not parts:
            continue
        w(f"    {title} time: {sum(parts.values()):e}s\n")
        for name, t in sorted(parts.items(), key=lambda kv: -kv[1]):
            if name:
                w(f"       {name}: {t:e}s\n")
    other = p.compile_time - sum(p.phases.values())
    if p.phases:
        w(f"    Other (graph checks, lazy branches, wrappers): {max(other, 0.0):e}s\n")
    if p.rewrites:
        w("  Rewrites by time:\n")
        w("    <time> <#tried> <#applied> <pass.rewrite>\n")
        top = sorted(p.rewrites.items(), key=lambda kv: -kv[1].time)
        for (pass_name, name), s in top[:N_REWRITES_TO_PRINT]:
            w(f"    {s.time:e}s {s.calls:8d} {s.applied:9d}   {pass_name}.{name}\n")
        if len(top) > N_REWRITES_TO_PRINT:
            w(f"    ... (remaining {len(top) - N_REWRITES_TO_PRINT} rewrites)\n")
    w("\n")


def _grouped_section(p: ProfileStats, f: TextIO, title: str, key, total: float,
                     n: int) -> None:
    groups = sorted(p.grouped(key).items(), key=lambda kv: -kv[1][0])
    f.write(f"{title}\n---\n")
    f.write(f"<% time> <sum %> <apply time> <time per call> <#call> <#apply> "
            f"<{'Op' if title == 'Ops' else title} name>\n")
    cumulative = 0.0
    for name, (t, calls, steps) in groups[:n]:
        cumulative += t
        f.write(f"  {_pct(t, total):5.1f}%  {_pct(cumulative, total):6.1f}%  {t:10.3f}s  "
                f"{t / calls if calls else 0.0:12.2e}s  {calls:6d}  {steps:6d}   {name}\n")
    rest = groups[n:]
    rest_t = sum(g[1][0] for g in rest)
    f.write(f"   ... (remaining {len(rest)} {PLURAL[title]} account for {_pct(rest_t, total):6.2f}%"
            f"({rest_t:.2f}s) of the runtime)\n\n")


def _apply_section(f: TextIO, rows: list, total: float, n: int) -> None:
    f.write("Apply\n------\n")
    f.write("<% time> <sum %> <apply time> <time per call> <#call> <id> <Apply name>\n")
    ordered = sorted(rows, key=lambda r: -r[2])
    cumulative = 0.0
    for k, entry, t, calls in ordered[:n]:
        cumulative += t
        f.write(f"  {_pct(t, total):5.1f}%  {_pct(cumulative, total):6.1f}%  {t:10.3f}s  "
                f"{t / calls if calls else 0.0:12.2e}s  {calls:6d}  {k:4d}   {entry}\n")
    rest = ordered[n:]
    rest_t = sum(r[2] for r in rest)
    f.write(f"   ... (remaining {len(rest)} Apply instances account for "
            f"{_pct(rest_t, total):.2f}%({rest_t:.2f}s) of the runtime)\n\n")
