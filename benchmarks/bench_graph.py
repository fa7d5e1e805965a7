"""Trainability-aware graph and gene scores against the reference, time and peak memory.

    python benchmarks/bench_graph.py > benchmarks/results/graph.md

Each case runs in a fresh process (peak RSS is per process). Embedding: 50 PCs of
clustered synthetic cells; k = 15, alpha = 0.9. The reference builds dense n x n
matrices and runs out of memory beyond ~25k cells on 24 GB, so larger sizes are ours alone
(500k and 1M cells take ~15 min together).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def embedding(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (20, 50))
    Z = centres[rng.integers(0, 20, n)] + rng.normal(0, 1, (n, 50))
    conf = rng.random(n)
    return Z.astype(np.float32), conf


def child(impl: str, what: str, n: int) -> dict:
    import logging

    import anndata as ad
    import scipy.sparse as sp
    from _common import peak_rss_mb

    logging.disable(logging.WARNING)
    Z, conf = embedding(n)
    if what == "genes":  # the data are built before the baseline is read
        rng = np.random.default_rng(1)
        X = sp.random(n, 2000, density=0.1, format="csr", dtype=np.float32, random_state=rng)
        X.data = np.round(X.data * 20)
    base = peak_rss_mb()
    if what == "graph":
        adata = ad.AnnData(obs={"conf": conf}, obsm={"X_pca": Z})
        t0 = time.perf_counter()
        if impl == "ours":
            from napari_annotatability import trainability_graph

            trainability_graph(adata, conf_key="conf", k=15, alpha=0.9)
            conn = adata.obsp["trainability_connectivities"]
        else:
            from Annotatability import metrics

            conn, _ = metrics.make_conf_graph(adata, alpha=0.9, k=15)
            conn = sp.csr_matrix(conn)
        seconds = time.perf_counter() - t0
        np.save(f"/tmp/graph_{impl}_{n}.npy", np.vstack(conn.nonzero()))
        np.save(f"/tmp/graphw_{impl}_{n}.npy", np.asarray(conn[conn.nonzero()]).ravel())
    else:
        adata = ad.AnnData(X=X, obs={"conf": conf})
        t0 = time.perf_counter()
        if impl == "ours":
            from napari_annotatability import gene_scores

            gene_scores(adata, conf_key="conf")
            high = adata.var["conf_score_high"].dropna().to_numpy()
        else:
            from Annotatability import metrics

            high = metrics.rank_genes_conf_min_counts(adata).var["conf_score_high"].to_numpy()
        seconds = time.perf_counter() - t0
        np.save(f"/tmp/genes_{impl}_{n}.npy", high)
    return {"seconds": seconds, "extra_mb": peak_rss_mb() - base}


def run(impl, what, n):
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, what, str(n)], capture_output=True, text=True
    )
    if out.returncode:
        sys.stderr.write(out.stderr[-2000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_graph(n):
    a = np.load(f"/tmp/graph_ours_{n}.npy")
    b = np.load(f"/tmp/graph_reference_{n}.npy")
    edges_a = set(map(tuple, a.T))
    edges_b = set(map(tuple, b.T))
    wa = dict(zip(map(tuple, a.T), np.load(f"/tmp/graphw_ours_{n}.npy"), strict=True))
    wb = dict(zip(map(tuple, b.T), np.load(f"/tmp/graphw_reference_{n}.npy"), strict=True))
    common = edges_a & edges_b
    diff = max((abs(wa[e] - wb[e]) for e in common), default=0.0)
    return len(edges_a ^ edges_b), len(edges_b), diff


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 10000, 20000])
    parser.add_argument("--ours-only", type=int, nargs="*", default=[100000])
    parser.add_argument("--what", nargs="*", default=["graph", "genes"])
    args = parser.parse_args()
    if args.child:
        impl, what, n = args.child
        print(json.dumps(child(impl, what, int(n))))
        return
    print(
        "| what | cells | reference s | ours s | speed-up | reference extra MB | "
        "ours extra MB | memory ratio | agreement |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for what in args.what:
        for n in args.sizes:
            ref, ours = run("reference", what, n), run("ours", what, n)
            if ref is None:
                print(
                    f"| {what} | {n:,} | failed | {ours['seconds']:.1f} | | | "
                    f"{ours['extra_mb']:,.0f} | | |",
                    flush=True,
                )
                continue
            if what == "graph":
                n_diff, n_edges, wdiff = same_graph(n)
                agree = f"{n_diff} of {n_edges:,} edges differ, max weight diff {wdiff:.1e}"
            else:
                a, b = np.load(f"/tmp/genes_ours_{n}.npy"), np.load(f"/tmp/genes_reference_{n}.npy")
                agree = f"max score diff {np.max(np.abs(a - b)):.1e} ({a.size} genes)"
            print(
                f"| {what} | {n:,} | {ref['seconds']:.1f} | {ours['seconds']:.1f} | "
                f"{ref['seconds'] / ours['seconds']:.1f}x | {ref['extra_mb']:,.0f} | "
                f"{ours['extra_mb']:,.0f} | "
                f"{ref['extra_mb'] / max(ours['extra_mb'], 1):.0f}x | {agree} |",
                flush=True,
            )
        for n in args.ours_only:
            ours = run("ours", what, n)
            label = "(out of memory)" if what == "graph" else "(not run)"
            print(
                f"| {what} | {n:,} | {label} | {ours['seconds']:.1f} | | | "
                f"{ours['extra_mb']:,.0f} | | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
