"""What the benchmarks share: where the release binaries are, and how memory is measured."""

import os
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# The cargo target dir of the npm scripts (scripts/env.sh).
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/pocaduck-edge/target"))
# The benchmarks' own `cargo build` must build the binaries they then run, also when a
# script is started directly rather than through `npm run bench`.
os.environ["CARGO_TARGET_DIR"] = TARGET
BIN = os.path.join(TARGET, "release", "pocaduck-edge")


def run_measured(args):
    """Runs a command in its own process; returns (seconds, peak RSS in MB)."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return time.perf_counter() - started, int(done.stderr.strip().splitlines()[-1]) / 1024


def peak_rss_mb(pid):
    """The peak RSS (VmHWM) of a running process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")
