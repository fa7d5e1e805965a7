"""Curation speed: the edit log in core, and one edit as a person makes it in napari.

python benchmarks/bench_curation.py --cells 1000000            # core only
xvfb-run -a python benchmarks/bench_curation.py --cells 100000 --gui
"""

from __future__ import annotations

import argparse
import time

import anndata as ad
import numpy as np
import pandas as pd

from napari_annotatability.core.curation import Curation
from napari_annotatability.core.edit_tables import apply_edits, export_table


def timed(step: str, func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    print(f"{step:<45} {time.perf_counter() - start:7.3f} s", flush=True)
    return out


def scored_obs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = [f"type {i}" for i in range(20)]
    flags = rng.choice(["Easy-to-learn", "Ambiguous", "Hard-to-learn"], n)
    suggested = np.where(flags == "Hard-to-learn", rng.choice(classes, n), None)
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(classes, n)),
            "cell_type_conf": rng.uniform(0, 1, n),
            "cell_type_var": rng.uniform(0, 0.3, n),
            "cell_type_flag": pd.Categorical(flags),
            "cell_type_suggested": pd.Categorical(suggested, categories=classes),
        },
        index=[f"c{i}" for i in range(n)],
    )


def core(n: int) -> None:
    obs = scored_obs(n)
    adata = ad.AnnData(obs=obs)
    rng = np.random.default_rng(1)
    curation = timed("create the curation", Curation, adata, "cell_type")
    timed("relabel 1,000 cells", curation.relabel, rng.choice(n, 1000, replace=False), "type 3")
    edit = timed("accept every Hard-to-learn suggestion", curation.accept_suggestions)
    print(f"  ({edit.positions.size:,} cells)")
    timed("undo that", curation.undo)
    table = timed("export table", export_table, adata, "cell_type")
    fresh = ad.AnnData(obs=obs[["cell_type"]].copy())
    timed(f"apply_edits ({n:,} rows)", apply_edits, fresh, "cell_type", table)


def gui(n: int) -> None:
    import sys
    from pathlib import Path

    import napari

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_layers import scored_tissue

    from napari_annotatability._napari.layers import cells_layer
    from napari_annotatability._napari.viewer_sync import show_results
    from napari_annotatability._qt.curation_widget import CurationWidget

    viewer = napari.Viewer(show=False)
    data = cells_layer(scored_tissue(n), "cell_type")
    source = viewer.add_points(data[0], **data[1])
    show_results(viewer, source)
    widget = CurationWidget(viewer, threaded=False)
    widget.edits.target.value = "type 3"
    for k in range(3):
        source.selected_data = {k}
        timed(f"napari: relabel one cell (edit {k + 1})", widget.edits.relabel_selected)
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--gui", action="store_true", help="also time edits in napari")
    args = parser.parse_args()
    print(f"{args.cells:,} cells")
    core(args.cells)
    if args.gui:
        gui(args.cells)


if __name__ == "__main__":
    main()
