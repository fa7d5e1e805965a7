"""Speed of the training dynamics against the reference package, in one run.

Run by hand (needs ``pip install --no-deps Annotatability==0.0.5`` in the environment)::

    python benchmarks/bench_speed.py > benchmarks/results/speed.md

Per-epoch figures are medians over epochs 2..E (ours) and (total - sampler set-up) / E
(reference), from the whole 50-epoch runs where those were run. Whole-run figures are
measured where affordable on 2 cores, otherwise estimated as set-up + 50 x per-epoch
(marked "est.").
"""

from __future__ import annotations

import argparse
import logging
import warnings

from _common import (
    machine,
    our_sampler_setup,
    ours,
    reference,
    reference_sampler_setup,
    synthetic,
)

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def sampler_table(sizes):
    print("\n### Weighted-sampler set-up\n")
    print("| cells | reference (s) | ours (s) | ratio |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        adata = synthetic(n, 10)
        ref = reference_sampler_setup(adata, "label")
        our = min(our_sampler_setup(adata, "label") for _ in range(3))
        print(f"| {n:,} | {ref:.2f} | {our:.4f} | {ref / our:,.0f}x |", flush=True)


def epoch_table(cases, epochs, full_run_limit):
    print(f"\n### Per epoch and whole 50-epoch run ({epochs} timed epochs per case)\n")
    print(
        "| cells x features | input | reference s/epoch | ours s/epoch | ratio | "
        "reference 50 epochs (s) | ours 50 epochs (s) | ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for n, g, density in cases:
        adata = synthetic(n, g, density=density)
        kind = "dense" if density is None else f"sparse {density:.0%}"
        setup = reference_sampler_setup(adata, "label")
        _, _, ref_total = reference(adata, "label", epochs)
        ref_epoch = (ref_total - setup) / epochs
        _, _, _, our_epoch = ours(adata, "label", epochs)
        if n * g <= full_run_limit:
            _, _, ref_full = reference(adata, "label", 50)
            _, _, our_full, our_epoch = ours(adata, "label", 50)
            ref_epoch = (ref_full - setup) / 50
            ref_s, our_s = f"{ref_full:.1f}", f"{our_full:.1f}"
        else:
            ref_full, our_full = setup + 50 * ref_epoch, 50 * our_epoch
            ref_s, our_s = f"{ref_full:.0f} est.", f"{our_full:.0f} est."
        print(
            f"| {n:,} x {g:,} | {kind} | {ref_epoch:.2f} | {our_epoch:.2f} | "
            f"{ref_epoch / our_epoch:.1f}x | {ref_s} | {our_s} | {ref_full / our_full:.1f}x |",
            flush=True,
        )


#: Storages of the same data: dense, sparse (10% non-zeros, as in RNA counts) and CSR at
#: 84% non-zeros (as panel data is often stored), which trains through dense batches.
DENSITIES = (None, 0.1, 0.84)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument(
        "--case",
        nargs=2,
        type=int,
        action="append",
        metavar=("CELLS", "GENES"),
        help="only these sizes (dense, sparse and dense-ish CSR), e.g. --case 50000 2000",
    )
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    if args.case:
        epoch_table([(n, g, d) for n, g in args.case for d in DENSITIES], 5, 10000 * 2000)
        return
    if args.quick:
        sampler_table([2000, 10000])
        epoch_table([(10000, 500, None), (10000, 500, 0.1)], 3, 10000 * 500)
        return
    sampler_table([2000, 10000, 50000, 100000])
    cases = [(n, g, d) for n in (10000, 50000) for g in (500, 2000) for d in DENSITIES]
    epoch_table(cases, 5, 10000 * 2000)


if __name__ == "__main__":
    main()
