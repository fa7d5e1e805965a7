"""Peak memory (RSS) of one training-dynamics epoch on sparse input, each case in its own process.

python benchmarks/bench_memory.py > benchmarks/results/memory.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

CASES = [(50000, 2000, 0.1), (200000, 2000, 0.1)]


def measure(impl: str, n: int, g: int, density: float) -> dict:
    import logging

    from _common import ours, peak_rss_mb, reference, synthetic

    logging.disable(logging.WARNING)
    adata = synthetic(n, g, density=density)
    data_mb = peak_rss_mb()
    if impl == "ours":
        ours(adata, "label", 1)
    else:
        reference(adata, "label", 1)
    return {"data_mb": data_mb, "peak_mb": peak_rss_mb()}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        impl, n, g, d = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        print(json.dumps(measure(impl, n, g, d)))
        return
    print(
        "| cells x genes (sparse) | non-zeros | RSS after loading (MB) | reference peak (MB) | "
        "ours peak (MB) | reference extra / ours extra |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n, g, d in CASES:
        got = {}
        for impl in ("reference", "ours"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", impl, str(n), str(g), str(d)],
                capture_output=True,
                text=True,
                check=True,
            )
            got[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        base = got["ours"]["data_mb"]
        ref_extra = got["reference"]["peak_mb"] - got["reference"]["data_mb"]
        our_extra = got["ours"]["peak_mb"] - base
        print(
            f"| {n:,} x {g:,} | {d:.0%} | {base:,.0f} | {got['reference']['peak_mb']:,.0f} | "
            f"{got['ours']['peak_mb']:,.0f} | {ref_extra / max(our_extra, 1):.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
