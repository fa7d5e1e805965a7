"""A headless audit at full size from the command line: time, peak memory and the ETA.

Writes synthetic cells x genes (CSR) to an .h5ad file, then runs
``napari-annotatability score`` on it as a user would, in a child process, and reports
its wall time, its peak RSS (the child's VmHWM, via ``getrusage``), and how good the
progress bar's estimate of the remaining time was after the first 10 epochs::

    python benchmarks/bench_headless.py --cells 1000000 --genes 500 --density 0.1
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, synthetic

#: tqdm's "n/total [elapsed<remaining" (minutes:seconds or hours:minutes:seconds).
PROGRESS = re.compile(r"(\d+)/(\d+) \[([\d:]+)<([\d:?]+)")


def seconds(clock: str) -> float:
    total = 0.0
    for part in clock.split(":"):
        total = total * 60 + float(part)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--at-step", type=int, default=10, help="read the ETA at this step")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per network (default 50)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.h5ad"
        start = time.perf_counter()
        adata = synthetic(args.cells, args.genes, density=args.density)
        adata.write_h5ad(path)
        size_mb = path.stat().st_size / 2**20
        print(
            f"wrote {path.name}: {adata.n_obs:,} x {adata.n_vars:,}, {adata.X.nnz:,} non-zeros, "
            f"{size_mb:,.0f} MB in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        del adata
        command = [
            "napari-annotatability",
            "score",
            str(path),
            "--label",
            "label",
            "-o",
            str(Path(folder) / "scored.h5ad"),
        ]
        if args.epochs is not None:
            command += ["--epochs", str(args.epochs)]
        start = time.perf_counter()
        child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        predicted, finished = None, float("nan")
        buffer = ""
        while True:
            chunk = child.stderr.read(256)
            if not chunk:
                break
            buffer = (buffer + chunk)[-4096:]
            for match in PROGRESS.finditer(buffer):
                step = int(match.group(1))
                if step == int(match.group(2)):
                    finished = seconds(match.group(3))
                if predicted is None and step >= args.at_step and "?" not in match.group(4):
                    elapsed, left = seconds(match.group(3)), seconds(match.group(4))
                    predicted = (step, elapsed, elapsed + left)
                    print(
                        f"ETA at step {step}/{match.group(2)}: {left:.0f} s left, "
                        f"{elapsed + left:.0f} s in all",
                        flush=True,
                    )
        out, _ = child.communicate()
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(out)
    if child.returncode:
        sys.exit(child.returncode)
    print(f"\nMachine: {machine()}.\n")
    print(
        "| cells x genes | non-zeros | file MB | score command s | audit s (progress bar) "
        f"| peak RSS MB | estimate at step {args.at_step} | error of the estimate |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    estimate = predicted[2] if predicted else float("nan")
    print(
        f"| {args.cells:,} x {args.genes:,} | {args.density:.0%} | {size_mb:,.0f} | {wall:.0f} "
        f"| {finished:.0f} | {peak_mb:,.0f} | {estimate:.0f} s "
        f"| {(estimate - finished) / finished:+.0%} |"
    )


if __name__ == "__main__":
    main()
