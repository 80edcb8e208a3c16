"""``python -m simulator``: same options as ``gatewatch sim``."""

from __future__ import annotations

import argparse
import sys

from simulator.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Simulated IB Gateway")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
