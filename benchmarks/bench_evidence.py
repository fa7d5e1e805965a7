"""How fast the cell evidence widget follows the cursor: one cell's update at 100k cells.

Audits a synthetic tissue (curves kept, as the training widget keeps them), opens it in a
napari viewer with the Cell evidence widget docked, and times ``show_cell`` followed by
a synchronous repaint of the widget, for cells drawn at random (half of them
Hard-to-learn): the first cell (the index is built), cells whose classes were not seen
yet (class curves and gene contrasts computed), and the rest. Also times napari's own
``get_value`` under the cursor, which the hover path adds. Run under a display::

    xvfb-run -a python benchmarks/bench_evidence.py --cells 100000 --out results/evidence.md
"""

from __future__ import annotations

import argparse
import time

import napari
import numpy as np

import napari_annotatability as nat
from napari_annotatability import datasets
from napari_annotatability._napari.layers import cells_layer
from napari_annotatability._qt.evidence_widget import EvidenceWidget
from napari_annotatability.core import keys
from napari_annotatability.core.scores import HARD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default=None, help="also write a markdown table here")
    args = parser.parse_args()

    adata = datasets.synthetic_tissue(
        n_cells=args.cells, n_genes=args.genes, n_classes=args.classes, seed=0
    )
    start = time.perf_counter()
    nat.annotate(adata, "label", epochs=args.epochs, store_record=True)
    print(f"audit of {adata.n_obs:,} x {adata.n_vars:,}: {time.perf_counter() - start:.0f} s")

    viewer = napari.Viewer()
    data, kwargs, _ = cells_layer(adata, "label", name="cells")
    viewer.add_points(data, **kwargs)
    widget = EvidenceWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Cell evidence")
    app = napari.qt.get_qapp()
    app.processEvents()

    rng = np.random.default_rng(0)
    hard = np.flatnonzero(adata.obs[keys.flag_key("label")].astype(str).to_numpy() == HARD)
    cells = np.concatenate(
        [rng.choice(hard, args.repeats // 2), rng.choice(adata.n_obs, args.repeats // 2)]
    )
    rng.shuffle(cells)
    seen: set = set()
    first, new, cached = [], [], []
    for cell in cells:
        t0 = time.perf_counter()
        evidence = widget.show_cell(int(cell))
        widget.native.repaint()
        seconds = time.perf_counter() - t0
        pair = (evidence.label, evidence.other)
        if not first:
            first.append(seconds)
        elif pair in seen:
            cached.append(seconds)
        else:
            new.append(seconds)
        seen.add(pair)

    layer = viewer.layers["cells"]
    viewer.camera.center = tuple(layer.data[cells[0]])
    viewer.camera.zoom = 20 * viewer.camera.zoom  # real points drawn, as when hovering
    app.processEvents()
    hover = []
    for cell in cells[:50]:
        t0 = time.perf_counter()
        layer.get_value(tuple(layer.data[cell]), world=True)
        hover.append(time.perf_counter() - t0)

    def row(name: str, times: list[float]) -> str:
        ms = 1000 * np.asarray(times)
        if not ms.size:
            return f"| {name} | 0 | | | |"
        return (
            f"| {name} | {ms.size} | {np.median(ms):.1f} | {np.percentile(ms, 95):.1f} "
            f"| {ms.max():.1f} |"
        )

    lines = [
        f"{adata.n_obs:,} cells x {adata.n_vars:,} genes, {args.classes} classes, "
        f"{args.epochs} epochs kept ({widget.index().memory_bytes / 2**20:.1f} MB of curves "
        "and class probabilities)",
        "",
        "| update | cells | median (ms) | 95th pct (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
        row("first cell (index built)", first),
        row("first cell of a class pair", new),
        row("any other cell", cached),
        row("napari get_value under the cursor", hover),
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(table + "\n")
    viewer.close()


if __name__ == "__main__":
    main()
