"""Import shim so tests can call examples/run_seed.py's main()."""

import os
import runpy

main = runpy.run_path(os.path.join(os.path.dirname(__file__), os.pardir, "examples",
                                   "run_seed.py"))["main"]
