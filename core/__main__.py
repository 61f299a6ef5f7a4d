"""Command line: `theanine info` (or `python -m theanine info`), `theanine info --coverage` for
the conformance matrix (see theanine.coverage), and `theanine setup-opencl` to install a CPU
OpenCL platform that builds on this host."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="theanine", description="theanine tools")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="version, plugins, backends and their availability")
    cov = info.add_argument_group(
        "coverage", "the op x backend x dtype matrix: supported, unsupported (with the reason) "
                    "or failing, from a run of the conformance kit; then how each of those "
                    "backends' op tables runs each library op")
    cov.add_argument("--coverage", action="store_true",
                     help="run the conformance kit (few examples per case) and print the matrix; "
                          "exits 1 when a cell fails")
    cov.add_argument("--backend", action="append", metavar="NAME",
                     help="backend to cover (repeatable; default: every available one)")
    cov.add_argument("--examples", type=int, default=3, metavar="N",
                     help="drawn inputs per case and dtype (default 3)")
    cov.add_argument("--cases", metavar="EXPR",
                     help="only the cases matching this pytest -k expression (e.g. 'erf or exp')")
    cov.add_argument("--extended-dtypes", action="store_true",
                     help="also cover float16, complex64 and complex128")
    cov.add_argument("--results", metavar="FILE",
                     help="read the cells from FILE, written by `pytest --pyargs "
                          "theanine.testing --theanine-report FILE`, instead of running")
    cov.add_argument("--format", choices=("text", "md", "html"), default="text")
    cov.add_argument("--output", metavar="FILE", help="write the matrix to FILE")
    setup = sub.add_parser("setup-opencl", help="install a CPU OpenCL platform (PoCL) that "
                           "builds kernels on this host, privately in this Python environment")
    setup.add_argument("--force", action="store_true", help="fetch and probe it again")
    args = parser.parse_args(argv)
    if args.command == "setup-opencl":
        from theanine.backends.opencl.platform_setup import setup as setup_opencl

        return setup_opencl(force=args.force)
    if args.command == "info" and args.coverage:
        return _coverage(args)
    if args.command == "info":
        from theanine.info import info_lines

        print("\n".join(info_lines()))
    return 0


def _coverage(args) -> int:
    from theanine.coverage import (
        RENDERERS,
        Matrix,
        declared_implementations,
        load_report,
        run_kit,
    )

    if args.results:
        report = load_report(args.results)
    else:
        import importlib.util

        missing = [m for m in ("pytest", "hypothesis") if importlib.util.find_spec(m) is None]
        if missing:
            print(f"theanine info --coverage runs the conformance kit, which needs "
                  f"{' and '.join(missing)}: pip install 'theanine[test]'", file=sys.stderr)
            return 2
        from theanine.backend import backends

        registry = backends()
        names = args.backend or [n for n, b in registry.items() if b.available()[0]]
        unknown = [n for n in names if n not in registry]
        if unknown:
            print(f"theanine info --coverage: unknown backend(s) {', '.join(unknown)}; "
                  f"registered: {', '.join(sorted(registry))}", file=sys.stderr)
            return 2
        print(f"running the conformance kit on {', '.join(names)} ({args.examples} examples "
              "per case and dtype) ...", file=sys.stderr)
        report = run_kit(names, args.examples, args.extended_dtypes, args.cases)
    matrix = Matrix.from_report(report)
    matrix.declared = declared_implementations(matrix.backends)
    text = RENDERERS[args.format](matrix)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}: {matrix.summary()}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 1 if matrix.failing() else 0


if __name__ == "__main__":
    sys.exit(main())
