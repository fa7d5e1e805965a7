"""Open, audit-ready placement and write-back of a SpatialData store at 100k cells.

    xvfb-run -a python benchmarks/bench_spatialdata.py --cells 100000

Builds a Xenium-like store (hexagonal cell polygons, a multiscale H&E-like image, a table
of the synthetic tissue's counts) once, then, each in a fresh process so that peak memory
is the step's own:
- placing the cells (``nat.spatialdata_cells``: read the store, centroids in the image's
  coordinate system),
- the reader (the layer data napari gets: images + cells),
- napari opening the store and drawing it (software OpenGL under Xvfb here),
- writing an audit's columns back into the table (``nat.write_spatialdata``).
Prints a markdown table of seconds (after the imports, which are printed apart) and peak
RSS of the whole process (imports included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = {
    "place cells (spatialdata_cells)": (
        "import napari_annotatability as nat\ncells = nat.spatialdata_cells(STORE)\n"
    ),
    "reader (layer data of images + cells)": (
        "from napari_annotatability._napari.spatialdata_layers import read_spatialdata_layers\n"
        "layers = read_spatialdata_layers(STORE)\n"
    ),
    "napari: open the store and draw it": (
        "import napari\n"
        "viewer = napari.Viewer()\n"
        "START = time.perf_counter()\n"
        "viewer.open(STORE, plugin='napari-annotatability')\n"
        "viewer.screenshot(canvas_only=True, flash=False)\n"
    ),
    "write back 7 audit columns": (
        "import numpy as np, napari_annotatability as nat\n"
        "cells = nat.spatialdata_cells(STORE)\n"
        "for c in ('conf', 'var', 'flag', 'score', 'amb', 'sugg', 'curated'):\n"
        "    cells.adata.obs['label_' + c] = np.random.default_rng(0).random(cells.adata.n_obs)\n"
        "START = time.perf_counter()\n"
        "nat.write_spatialdata(cells)\n"
    ),
}

# Peak RSS from VmHWM, which starts anew at exec (ru_maxrss would carry the parent's peak).
RUNNER = """
import json, time
t0 = time.perf_counter()
import napari_annotatability, spatialdata
imports = time.perf_counter() - t0
STORE = {store!r}
START = time.perf_counter()
{code}
seconds = time.perf_counter() - START
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({{"seconds": seconds, "imports": imports, "peak_mb": int(status) / 1024}}))
"""


def build(n_cells: int, path: Path) -> float:
    from napari_annotatability import datasets

    adata = datasets.synthetic_tissue(n_cells=n_cells, n_genes=500, n_classes=8, seed=0)
    start = time.perf_counter()
    datasets.write_spatialdata_store(adata, path, overwrite=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "tissue.zarr"
        print(f"built a {args.cells:,}-cell store in {build(args.cells, store):.1f} s", flush=True)
        rows = []
        for step, code in STEPS.items():
            script = RUNNER.format(store=str(store), code=code)
            done = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((step, result["seconds"], result["peak_mb"]))
            print(
                f"{step:<45} {result['seconds']:7.2f} s {result['peak_mb']:8.0f} MB "
                f"(imports before it: {result['imports']:.1f} s)",
                flush=True,
            )
    print(f"\n| step ({args.cells:,} cells x 500 genes) | seconds | peak RSS (MB) |")
    print("|---|---:|---:|")
    for step, seconds, peak in rows:
        print(f"| {step} | {seconds:.1f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
