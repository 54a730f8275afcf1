"""Run Vision Studio from a source checkout: `python main.py [PROJECT] [--sample]`."""

from studio.app import main

if __name__ == "__main__":
    raise SystemExit(main())
