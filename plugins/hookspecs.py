"""The hooks a theanine plugin implements. Each takes a `register` callback, so one plugin
can contribute any number of backends, ops, kernels, rewrites, conformance cases or op
implementations. Each hook is called when what it fills is first needed, and again after
`reset_plugins()` (theanine.plugins.manager.PluginCollected).

These specs are public API: `plugins/hookspecs.lock` records every spec's name and argument
names per HOOKSPEC_VERSION, and a test fails when a spec changes without a new version.
docs/writing-a-backend.md and docs/writing-an-op.md say when each hook is called.
"""

from __future__ import annotations

import pluggy

PROJECT = "theanine"
HOOKSPEC_VERSION = 3

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def theanine_register_backends(register):
    """Call `register(backend)` for each `theanine.backend.Backend` instance this plugin
    provides. Called once, the first time the backend registry is needed."""


@hookspec
def theanine_register_ops(register):
    """Call `register(name, function, ops=())` for each tensor function this plugin adds; it
    becomes `theanine.tensor.<name>`. `ops` lists the Op instances, Op classes or ScalarOps the
    function builds, so the conformance meta-test holds each of them to a case. Called once per
    process, the first time an unknown attribute of `theanine.tensor` is looked up."""


@hookspec
def theanine_register_kernels(register):
    """Call `register(scalar_op_name, render, dtypes=("float32", "float64"))` to give an
    elementwise scalar op a kernel in the C-style renderer (C, OpenCL and CUDA dialects), so
    backends fuse it with its neighbours. `render(ctx, *args)` returns the C expression of one
    element: `args` are the C texts of its arguments, already converted to the output dtype
    `ctx.dtype`; `ctx` is a `theanine.codegen.scalar_kernels.ExprContext`. The kernel serves
    the ScalarOps of that name plugins list in `theanine_register_ops`; a name that theanine or
    another plugin already has is an error naming both. Called once, the first
    time a renderer is asked about an op it does not know."""


@hookspec
def theanine_register_rewrites(register):
    """Call `register(rewrite, *tags, name=..., position=...)` to add a rewrite to the
    databases (see theanine.rewrite.db.register_rewrite). Called once, before the
    first graph is rewritten."""


@hookspec
def theanine_register_cases(register):
    """Call `register(case)` with a `theanine.testing.cases.Case` for each op this plugin adds,
    so the conformance kit runs it on every backend. Called once, the first time
    the kit lists its cases."""


@hookspec
def theanine_register_impls(register):
    """Call `register(backend_name, op_class, implementation, how=None)` to give a backend an
    implementation of an op class (an entry in its `theanine.op_table.OpTable`, read along the
    class's MRO; `how` is the line coverage reports show). What `implementation` is belongs to
    the named backend (docs/writing-an-op.md); a name no backend or table has is an error.
    Called once per backend table, the first time that table is read."""
