"""studio-cli: the headless entry point. Never imports Qt.

Sub-commands register themselves from `studio.cli.data` (new, import, export, info, split)
`studio.cli.learn` (train, evaluate, predict, export-model) and `studio.cli.inspect`
(postprocess, review). Every StudioError becomes
a one-line message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys

from studio.core.errors import StudioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio-cli", description="Vision Studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from studio.cli import data, inspect, learn

    data.register(sub)
    learn.register(sub)
    inspect.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
