"""Command line: `theanine info` (or `python -m theanine info`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="theanine", description="theanine tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, plugins, backends and their availability")
    args = parser.parse_args(argv)
    if args.command == "info":
        from theanine.info import info_lines

        print("\n".join(info_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
