"""The packaged application's entry point (PyInstaller runs this file, not studio/app.py).

One bundle holds two executables built from this script: `studio` (the window) and
`studio-cli` (the command line); which one runs is read from the executable's name. The
application also starts itself as `python -m studio.ml.fit_child` for a training run
(studio/gui/train/runner.py): in a frozen build `sys.executable` is this program, so
`-m MODULE` is honoured here for the application's own modules.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import sys


def main() -> int:
    multiprocessing.freeze_support()  # spawned data-loader workers on Windows and macOS
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "-m":
        module = args[1]
        if module != "studio" and not module.startswith("studio."):
            print(f"error: this program runs only its own modules, not {module}",
                  file=sys.stderr)
            return 2
        sys.argv = [sys.argv[0], *args[2:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    name = os.path.splitext(os.path.basename(sys.executable))[0].lower()
    if name == "studio-cli":
        from studio.cli import main as cli_main

        return cli_main(args)
    from studio.app import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
