"""
run_all: every benchmark in this folder, each in its own process, one after another.

Usage::

    python benchmarks/run_all.py            # full runs (a few minutes)
    python benchmarks/run_all.py --quick    # few runs each, for CI: checks that nothing has rotted

Options after the script's own (``--quick``, ``--only NAME``) are passed to
every benchmark. Each script's output is printed as it comes; at the end all
the ``name: value (target ...)`` lines are repeated together, misses marked
``MISSED``. The exit status is non-zero only if a script crashed (a missed
target is a number for people, not a failure).
"""

import argparse
import os
import subprocess
import sys
import time
from typing import List, Tuple

SCRIPTS = ("startup", "overhead", "memory", "connections", "batch")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark, each in its own process.")
    parser.add_argument("--quick", action="store_true", help="few runs each (CI)")
    parser.add_argument("--only", action="append", choices=SCRIPTS, help="run only this benchmark (repeatable)")
    args, passthrough = parser.parse_known_args()
    here = os.path.dirname(os.path.abspath(__file__))
    extra = (["--quick"] if args.quick else []) + passthrough
    results: List[Tuple[str, int, float]] = []
    target_lines: List[str] = []
    started = time.perf_counter()
    for name in args.only or SCRIPTS:
        command = [sys.executable, os.path.join(here, name + ".py")] + extra
        print(f"### {name}: {' '.join(command)}", flush=True)
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, universal_newlines=True, bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if "(target " in line or "(no target)" in line:
                target_lines.append(line.rstrip("\n"))
        code = process.wait()
        elapsed = time.perf_counter() - began
        results.append((name, code, elapsed))
        print(f"### {name}: {'ok' if code == 0 else f'CRASHED (exit {code})'} in {elapsed:.1f} s\n", flush=True)

    print("### all targets")
    for line in target_lines:
        print(line)
    missed = [line for line in target_lines if line.endswith("MISSED")]
    crashed = [name for name, code, _ in results if code != 0]
    print()
    print(
        "### {} scripts in {:.1f} s: {} crashed{}; {} of {} targets missed".format(
            len(results),
            time.perf_counter() - started,
            len(crashed),
            f" ({', '.join(crashed)})" if crashed else "",
            len(missed),
            sum(1 for line in target_lines if "(target " in line),
        )
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
