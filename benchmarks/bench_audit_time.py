"""Wall time of a whole default audit: today's (label evidence) against the previous one.

The previous default audit is ``annotate(..., flags="dynamics", min_steps=None)``: the
training, its noise-injection run and the 100-epoch suggestion network. Today's default
trains the same two networks (at least 5 optimiser steps an epoch) and adds the label
evidence and its calibration run instead of the suggestion network. Both run in the same
process on the same data; each case is repeated and the median reported.

    python benchmarks/bench_audit_time.py > benchmarks/results/audit_time.md
    python benchmarks/bench_audit_time.py --large   # adds 100,000 x 500 synthetic counts

``--large`` runs each audit of the 100k case in its own process to report its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _common import DATA, REAL_DATASETS, load_real, machine, peak_rss_mb, synthetic

import napari_annotatability as nat

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
PREVIOUS = {"flags": "dynamics", "min_steps": None}


def audit_seconds(adata, key: str, options: dict) -> float:
    t0 = time.perf_counter()
    nat.annotate(adata, key, device="cpu", copy=True, **options)
    return time.perf_counter() - t0


def child(options: str) -> None:
    """One 100k x 500 audit: seconds and peak RSS, as JSON."""
    adata = synthetic(100_000, 500, density=0.3)
    loaded = peak_rss_mb()
    seconds = audit_seconds(adata, "label", json.loads(options))
    print(json.dumps({"seconds": seconds, "loaded_mb": loaded, "peak_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also 100,000 x 500 cells")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    print("# Whole default audit: today's against the previous default\n")
    print(f"Machine: {machine()}. Median of {args.repeats} runs, CPU.\n")
    print("| dataset | cells x features | previous default (s) | today's default (s) | ratio |")
    print("|---|---|---:|---:|---:|")
    for folder, key, how in REAL_DATASETS:
        if not (DATA / folder).is_dir():
            continue
        adata = load_real(folder, how)
        times = {}
        for name, options in (("previous", PREVIOUS), ("today", {})):
            times[name] = float(
                np.median([audit_seconds(adata, key, options) for _ in range(args.repeats)])
            )
        print(
            f"| {folder} | {adata.n_obs:,} x {adata.n_vars:,} | {times['previous']:.1f} | "
            f"{times['today']:.1f} | {times['today'] / times['previous']:.2f} |",
            flush=True,
        )
    if args.large:
        print("\n| 100,000 x 500 synthetic counts (30% non-zero) | seconds | peak RSS (MB) |")
        print("|---|---:|---:|")
        for name, options in (("previous default", PREVIOUS), ("today's default", {})):
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(options)],
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {name} | {got['seconds']:.0f} | {got['peak_mb']:,.0f} |", flush=True)
    print(f"\ntorch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
