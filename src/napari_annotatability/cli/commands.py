"""What each command of the ``napari-annotatability`` command line does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_annotatability.core import keys
from napari_annotatability.core.errors import AnnotatabilityInputError

SAMPLE_OUTPUT = "annotatability_sample.h5ad"


def _check_output(
    source: Path | None, output: Path, overwrite: bool, *, table: bool = False
) -> None:
    """Refuse, before any work, to write over the input, over a file, or into no folder.

    An AnnData output needs an AnnData suffix (.h5ad or .zarr); a ``table`` output's
    suffix is checked by :func:`~napari_annotatability.api.table_separator`.
    """
    if not table:
        from napari_annotatability.core.anndata_io import anndata_format

        anndata_format(output)
    if not output.parent.is_dir():
        raise AnnotatabilityInputError(
            f"Output folder {str(output.parent)!r} does not exist; create it or choose another -o."
        )
    if source is not None and output.resolve() == source.resolve() and not overwrite:
        hint = ""
        if _is_store(source):
            hint = " (for a SpatialData store, --overwrite replaces its table only)"
        raise AnnotatabilityInputError(
            f"Output {str(output)!r} is the input file; choose another -o or pass "
            f"--overwrite{hint}."
        )
    if output.exists() and not overwrite:
        raise AnnotatabilityInputError(
            f"Output {str(output)!r} already exists; choose another -o or pass --overwrite."
        )


def _is_store(path: Path | None) -> bool:
    from napari_annotatability.core.spatialdata_read import is_spatialdata_store

    return path is not None and is_spatialdata_store(path)


def _read_for_output(args: argparse.Namespace):
    _check_output(args.input, args.output, args.overwrite)
    return _read_input(args)


def _read_input(args: argparse.Namespace):
    """Read any data the plugin opens, with unique cell ids, and where it came from.

    ``.h5ad`` files and AnnData ``.zarr`` folders give ``(adata, None)``; a SpatialData
    store gives the cells of its table (``--table``, ``--coordinate-system``) and their
    :class:`~napari_annotatability.core.spatialdata_read.SpatialDataSource`.
    """
    from napari_annotatability.core import anndata_io as io
    from napari_annotatability.core.spatialdata_read import is_spatialdata_store

    if is_spatialdata_store(args.input):
        from napari_annotatability.api import spatialdata_cells

        cells = spatialdata_cells(
            args.input,
            table=args.table,
            coordinate_system=args.coordinate_system,
        )
        adata, source = cells.adata, cells.source
    else:
        adata, source = io.read_anndata(args.input), None
    keys.require_unique_cell_ids(adata)
    return adata, source


def _write_output(adata, source, output: Path, overwrite: bool) -> None:
    """Write the data: into its SpatialData table when ``output`` is the store, else a file."""
    from napari_annotatability.core import anndata_io as io

    if source is not None and source.path is not None and io.same_path(output, source.path):
        from napari_annotatability.core.spatialdata_write import write_table_back

        write_table_back(adata, source)
    else:
        io.write_anndata_atomic(adata, output, overwrite=overwrite)


def genes(args: argparse.Namespace) -> int:
    """Score genes against the audit's confidence; write them and a ranked table."""
    from napari_annotatability import api
    from napari_annotatability.core import anndata_io as io

    adata, source = _read_for_output(args)
    table = api.gene_scores(
        adata,
        label_key=args.label,
        layer=args.layer,
        min_counts=args.min_counts,
        power=args.power,
        power_low=args.power_low,
    )
    _write_output(adata, source, args.output, args.overwrite)
    if args.csv is not None:
        io.write_csv_atomic(table, args.csv, overwrite=args.overwrite)
    info = adata.uns["annotatability_genes"]
    top = table[table["direction"] == "high"].head(10)["gene"].tolist()
    sys.stdout.write(
        f"Scored {info['n_scored']} genes (left out {info['n_too_few_counts']} with total "
        f"counts < {args.min_counts:g}, {info['n_constant']} constant); wrote {args.output}\n"
        f"  top high: {', '.join(top)}\n"
    )
    return 0


def graph(args: argparse.Namespace) -> int:
    """Build the trainability-aware graph where scanpy finds it."""
    from napari_annotatability import api

    adata, source = _read_for_output(args)
    api.trainability_graph(
        adata,
        label_key=args.label,
        use_rep=args.use_rep,
        alpha=args.alpha,
        k=args.k,
        key_added=args.key_added,
        mean_distance=args.mean_distance,
        overwrite=args.overwrite,
    )
    _write_output(adata, source, args.output, args.overwrite)
    params = adata.uns[args.key_added]["params"]
    sys.stdout.write(
        f"Built the trainability-aware graph (k={args.k}, alpha={args.alpha:g}, "
        f"Dbar={params['mean_distance']:.4g}); wrote {args.output}\n"
        f"  use it with sc.tl.umap(adata, neighbors_key={args.key_added!r})\n"
    )
    return 0


def _output_path(args: argparse.Namespace) -> Path:
    if args.output is not None:
        return args.output
    if args.sample:
        return Path(SAMPLE_OUTPUT)
    return args.input.with_name(f"{args.input.stem}_annotatability.h5ad")


def _training_settings(args: argparse.Namespace) -> dict:
    """Training and flags: ours, or the reference's (--reference-settings)."""
    from napari_annotatability.api import REFERENCE_SETTINGS

    if args.reference_settings:
        return dict(REFERENCE_SETTINGS)
    return {
        "lr": args.lr,
        "min_width": args.min_width or None,  # 0: the reference's widths
        "min_steps": args.min_steps or None,  # 0: one pass over the cells
        "flags": args.flags,
    }


def score(args: argparse.Namespace) -> int:
    """Audit an annotation of a file (or the sample) and write the results to a new file."""
    from napari_annotatability import api, datasets

    if args.sample == (args.input is not None):
        raise AnnotatabilityInputError("Give exactly one of INPUT or --sample.")
    output = _output_path(args)
    # the demo's own default output is refreshed on every run, so the command can be repeated
    overwrite = args.overwrite or (args.sample and args.output is None)
    # the input itself may be replaced only with an explicit --overwrite
    _check_output(None if args.sample else args.input, output, overwrite)
    adata, source = (datasets.visium_dlpfc(), None) if args.sample else _read_input(args)
    label = args.label or adata.uns.get("label_key")
    if label is None:
        raise AnnotatabilityInputError(
            "No --label given and the file has no uns['label_key']; pass --label COLUMN."
        )
    steps = api.annotate_steps(
        adata,
        str(label),
        layer=args.layer,
        use_rep=args.use_rep,
        normalize=args.normalize,
        n_top_genes=args.n_top_genes,
        drop_missing=args.drop_missing,
        epochs=args.epochs,
        momentum=args.momentum,
        batch_size=args.batch_size,
        depth=args.depth,
        weighted_sampler=not args.no_weighted_sampler,
        seed=args.seed,
        device=args.device,
        **_training_settings(args),
        spatial_neighbours=args.spatial_neighbours,
        n_folds=args.n_folds,
        calibrate=not args.no_calibrate,
        noise_rate=args.noise_rate,
        percentile=args.percentile,
        suggest=not args.no_suggest,
        suggest_epochs=args.suggest_epochs,
    )
    result = api.run_steps(steps, progress=not args.quiet)
    result.write(adata, store_record=args.store_record)
    _write_output(adata, source, output, overwrite)
    _report(adata, str(label), output)
    return 0


def _report(adata, label: str, output: Path) -> None:
    from napari_annotatability.api import audit_summary

    info = adata.uns[keys.audit_key(label)]
    lines = [
        f"Scored {info['n_cells_used']} cells on {info['device']} "
        f"in {info['params']['total_seconds']:.1f} s; wrote {output}",
        f"  {audit_summary(adata, label)}",
        f"  mean confidence {adata.obs[keys.conf_key(label)].mean():.3f}",
    ]
    if "cutoffs" in info:
        cut = info["cutoffs"]
        lines.append(f"  dynamics cut-offs: conf <= {cut['conf']:.4f}, var <= {cut['var']:.4f}")
    lines += [f"  {flag}: {count}" for flag, count in info["flag_counts"].items()]
    written = [
        keys.conf_key(label),
        keys.var_key(label),
        keys.flag_key(label),
        keys.mislabel_key(label),
        keys.ambiguity_key(label),
        keys.dynamics_flag_key(label),
        keys.suggestion_key(label),
    ]
    lines.append("  columns: " + ", ".join(f"obs['{key}']" for key in written if key in adata.obs))
    sys.stdout.write("\n".join(lines) + "\n")


def view(args: argparse.Namespace) -> int:
    """Open napari on a file (or the sample) with the audit widgets docked."""
    if (args.input is None) == (not args.sample):
        raise AnnotatabilityInputError("Give an input file or --sample (not both).")
    if args.input is not None and not args.input.exists():
        raise AnnotatabilityInputError(f"Input {str(args.input)!r} does not exist.")
    import napari

    from napari_annotatability._qt.launch import open_viewer

    open_viewer(args.input, train=args.train, epochs=args.epochs, screenshot=args.screenshot)
    napari.run()
    return 0


def _label_of(args: argparse.Namespace, adata) -> str:
    label = args.label or adata.uns.get("label_key")
    if label is None:
        raise AnnotatabilityInputError(
            "No --label given and the file has no uns['label_key']; pass --label COLUMN."
        )
    return str(label)


def apply_edits(args: argparse.Namespace) -> int:
    """Replay a table of edits on a file and write the curated copy."""
    from napari_annotatability import api

    _check_output(args.input, args.output, args.overwrite)
    edits = api.read_edits(args.edits)
    adata, source = _read_input(args)
    label = _label_of(args, adata)
    curation = api.curate(adata, label)
    classes_before = set(curation.classes)
    reviewed_before = curation.n_reviewed()
    edit = api.apply_edits(
        adata,
        label,
        edits,
        label_column=args.label_column,
        allow_new_labels=args.allow_new_labels,
    )
    new_classes = [c for c in curation.classes if c not in classes_before]
    _write_output(adata, source, args.output, args.overwrite)
    summary = (
        f"Applied {len(edits)} rows of {args.edits.name}: {edit.n_changed} cells changed "
        f"label in obs['{curation.curated}'], "
        f"{curation.n_reviewed() - reviewed_before} newly marked reviewed, "
        + (f"new classes {new_classes}" if new_classes else "no new classes")
        + f"; wrote {args.output}\n"
    )
    sys.stdout.write(summary)
    return 0


def export_curation(args: argparse.Namespace) -> int:
    """Write the curation of a file as one row per cell."""
    from napari_annotatability import api
    from napari_annotatability.core.curation import curated_key, reviewed_key

    api.table_separator(args.output)  # a usable suffix, before reading the data
    _check_output(args.input, args.output, args.overwrite, table=True)
    adata, _source = _read_input(args)
    label = _label_of(args, adata)
    api.export_curation(adata, label, args.output, overwrite=args.overwrite)
    obs = adata.obs
    curated = curated_key(label)
    changed = (
        int((obs[curated].astype(str) != obs[label].astype(str)).sum()) if curated in obs else 0
    )
    reviewed = int(obs[reviewed_key(label)].sum()) if reviewed_key(label) in obs else 0
    sys.stdout.write(
        f"Wrote {adata.n_obs} cells of obs['{label}'] ({changed} relabelled, {reviewed} "
        f"reviewed) to {args.output}\n"
    )
    return 0


def report(args: argparse.Namespace) -> int:
    """Write the audit of a file as one self-contained HTML page."""
    from napari_annotatability import api

    if args.output.suffix.lower() not in (".html", ".htm"):
        raise AnnotatabilityInputError(
            "The report is an HTML file: give -o a name ending in .html "
            f"(got {str(args.output)!r})."
        )
    _check_output(args.input, args.output, args.overwrite, table=True)
    adata, _source = _read_input(args)
    label = api.audited_key(adata, args.label)
    api.write_report(adata, args.output, label, overwrite=args.overwrite)
    sys.stdout.write(f"{api.audit_summary(adata, label)}; wrote {args.output}\n")
    return 0
