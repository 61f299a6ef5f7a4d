"""Run a seed program with matplotlib drawing to PNG files instead of windows.

    python examples/run_seed.py examples/seed_000_theano_tutorial.py [--out DIR]

Each `plt.show()` saves the open figures as DIR/figure_NN.png (default examples/output/).
"""

from __future__ import annotations

import argparse
import os
import runpy


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "output"))
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.out, exist_ok=True)
    saved: list[str] = []

    def show(*_args, **_kwargs) -> None:
        for num in plt.get_fignums():
            path = os.path.join(args.out, f"figure_{len(saved):02d}.png")
            plt.figure(num).savefig(path, dpi=60)
            saved.append(path)
        plt.close("all")

    plt.show = show
    namespace = runpy.run_path(args.program, run_name="__main__")
    print(f"saved {len(saved)} figures to {args.out}")
    if "accuracy" in namespace and "current_cost" in namespace:
        print(f"MLP after {namespace['max_iteration']} iterations: cost "
              f"{float(namespace['current_cost']):.3f}, accuracy {namespace['accuracy']:.3f}")
    return namespace


if __name__ == "__main__":
    main()
