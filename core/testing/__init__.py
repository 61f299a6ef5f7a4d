"""The conformance kit: the suite that holds any backend to the NumPy reference.

Run it against a backend (a third party's too, once its plugin is installed):

    pytest --pyargs theanine.testing --theanine-backend NAME

Modules: `strategies` (hypothesis strategies: dtypes, broadcastable shapes, arrays with value
domains and strided / reversed / transposed / zero-stride layouts, random expression graphs),
`cases` (the registry of conformance cases; `elemwise_cases`, `tensor_cases`, `shape_cases`,
`kernel_cases`, `random_cases`, `loop_cases` and `scan_cases` fill it for the built-in library;
`random_cases` also holds the checks of random draws against Philox's bits and their
distributions, `scan_cases` the strategy of random scans), `compare` (compile
one graph on a backend and on the reference and compare outputs and gradients), `meta` (which
ops and functions have no case, which library ops a backend's op table does not implement),
`prewarm` (compile the case graphs in parallel first), `pytest_plugin` (options,
parametrization, the op x dtype coverage matrix) and `test_suite` (the tests).

A backend may declare `capabilities = {"dtypes": {...}, "unsupported_ops": {name: reason}}`
(op class names or elementwise scalar op names): cases needing anything else are skipped with
the reason instead of failing. Op plugins add cases through the `theanine_register_cases` hook;
`theanine info --coverage` (theanine.coverage) turns a run into an op x backend x dtype matrix.
"""
