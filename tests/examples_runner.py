"""Import shim so tests can call examples/run_seed.py's main()."""

import os
import runpy

main = runpy.run_path(os.path.join(os.path.dirname(__file__), os.pardir, "examples",
                                   "run_seed.py"))["main"]


def check_seed_on_device(seed: str, device: str) -> None:
    """Run seed program `seed` in a new process with THEANINE_FLAGS=device=<device> and check
    the numbers it prints that the seed shows."""
    import subprocess
    import sys

    env = dict(os.environ, THEANINE_FLAGS=f"device={device}")
    path = os.path.join(os.path.dirname(__file__), os.pardir, "examples", seed)
    out = subprocess.run([sys.executable, path], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    if seed.startswith("seed_001"):
        assert out.stdout.splitlines()[1] == "[array(0.60268197)]"
    else:
        assert "[[ 58.  64.]\n [139. 154.]]" in out.stdout
