"""loadgen.py - ../shared/bench's load generator (mqtt-bench) for the
benchmark scripts: its place, and a build where it lives when it is
missing, as ../shared/bench/suite.sh does."""

import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "..", "shared", "bench", "mqtt-bench")


def add_argument(ap):
    ap.add_argument("--bench", default=DEFAULT,
                    help="the load generator (built there when missing)")


def ready(path):
    """path, built first if it is not there yet."""
    if not os.access(path, os.X_OK):
        subprocess.run(["make", "-C", os.path.dirname(path)], check=True,
                       stdout=subprocess.DEVNULL)
    return path
