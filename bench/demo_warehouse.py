"""Demo warehouse generation: rows and seconds for the full Huế warehouse, optionally beside a baseline.

    python bench/demo_warehouse.py                          # this checkout only
    python bench/demo_warehouse.py --baseline-dir /work/main # the same command on another checkout first

Each checkout runs ``python -m data_sources.demo.generate`` in its own process on a fresh SQLite file
(same ``--now``), so the two figures come from one run on the same machine load.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-21T17:30:00"


def generate(checkout: Path, now: str) -> tuple[int, float, str]:
    """Total rows, wall seconds and the generator's own summary line for one checkout."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'warehouse.db'}"
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "data_sources.demo.generate", "--url", url, "--now", now],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - began
    total = next(line for line in done.stdout.splitlines() if line.startswith("total"))
    rows = int(re.sub(r"[^0-9]", "", total.split("rows")[0]))
    return rows, seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-dir", type=Path, default=None, help="another checkout to measure first")
    parser.add_argument("--now", default=NOW)
    args = parser.parse_args()
    results = []
    if args.baseline_dir is not None:
        results.append(("baseline " + str(args.baseline_dir), *generate(args.baseline_dir, args.now)))
    results.append(("this checkout", *generate(ROOT, args.now)))
    print(results[-1][3])
    print(f"{'checkout':40s} {'rows':>12s} {'seconds':>8s} {'rows/s':>10s}")
    for name, rows, seconds, _ in results:
        print(f"{name:40s} {rows:>12,d} {seconds:>8.1f} {rows / seconds:>10,.0f}")


if __name__ == "__main__":
    main()
