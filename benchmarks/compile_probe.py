"""Run by compile_bench.py in a new process: import theanine, build workload (4)'s MLP training
graph and compile it for the C backend, then print the phase times as JSON on stdout.

The cache directory is whatever $THEANINE_CACHE_DIR names (the parent sets a fresh one for a
cold compile and reuses it for a warm one).
"""

import time

T_START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


def main(dtype: str) -> None:
    """Time import, graph building, theanine.function(...) and one call; print them as JSON."""
    t0 = time.perf_counter()
    from mlp_bench import initial_values, theanine_graph

    import theanine as th

    t1 = time.perf_counter()
    init = initial_values(dtype)
    inputs, cost, updates, _ = theanine_graph(dtype, init)
    t2 = time.perf_counter()
    f = th.function(inputs, cost, updates=updates, backend="c")
    t3 = time.perf_counter()
    f(init["x"], init["y"])
    t4 = time.perf_counter()
    print(json.dumps({"startup": t0 - T_START, "import": t1 - t0, "build": t2 - t1,
                      "compile": t3 - t2, "first_call": t4 - t3}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "float64")
