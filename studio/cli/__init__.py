"""studio-cli: the headless entry point. Never imports Qt.

Sub-commands register themselves from `studio.cli.data` (new, import, export, info, split)
`studio.cli.learn` (train, evaluate, predict, export-model) and `studio.cli.inspect`
(postprocess, review). Every StudioError becomes
a one-line message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio.core.errors import StudioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio-cli", description="Vision Studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from studio.cli import data, inspect, learn
    from studio.cli import segment as segment_cli

    data.register(sub)
    learn.register(sub)
    inspect.register(sub)
    segment_cli.register(sub)
    return parser


def _printable_streams() -> None:
    """File names that are not valid UTF-8 reach messages as surrogates; print them as
    escapes instead of failing on them."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change (closed, detached)
                pass


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`studio-cli info P | head`): stop quietly, as cat does.
        # Python would flush stdout again at exit and fail once more: point it elsewhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a command ended by the pipe


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
