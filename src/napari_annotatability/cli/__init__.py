"""The ``napari-annotatability`` command line: headless scoring for big runs.

Examples
--------
``napari-annotatability score data.h5ad --label cell_type -o scored.h5ad --epochs 50``

``napari-annotatability score --sample`` (the bundled Visium DLPFC section)

``napari-annotatability view --sample --train`` (napari, the sample, flags on the tissue)

``napari-annotatability export-curation curated.h5ad --label cell_type -o edits.csv``

``napari-annotatability apply-edits full.h5ad edits.csv --label cell_type -o full_curated.h5ad``

``napari-annotatability score run.zarr --label cell_type -o run.zarr --overwrite`` (a
SpatialData store: the results go into its table)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_annotatability import __version__
from napari_annotatability.cli import commands
from napari_annotatability.core.errors import AnnotatabilityInputError

_INPUT_HELP = ".h5ad file, AnnData .zarr folder or SpatialData .zarr store"

_OUTPUT_HELP = (
    "output .h5ad file or .zarr folder; for a SpatialData input, the store itself (with "
    "--overwrite) writes the results into its table"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-annotatability",
        description="Audit cell-type annotations of spatial omics data: which labels look "
        "wrong (label evidence), with Annotatability training dynamics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser(
        "score",
        help="train, compute confidence/variability, mislabel scores, flags and suggestions",
        description="Score an .h5ad file, AnnData .zarr or SpatialData store; writes conf, var, "
        "the mislabel score, flags and suggestions to a new file (or into the store's table).",
    )
    src = score.add_argument_group("input")
    src.add_argument("input", nargs="?", type=Path, help=_INPUT_HELP)
    src.add_argument("--sample", action="store_true", help="use the bundled Visium DLPFC sample")
    src.add_argument(
        "--label", help="obs column of the annotation (default: uns['label_key'] if present)"
    )
    src.add_argument("--layer", help="train on adata.layers[LAYER] instead of X")
    src.add_argument("--use-rep", help="train on adata.obsm[USE_REP] instead of X")
    src.add_argument(
        "--normalize", action="store_true", help="normalise to 1e4 counts and log1p (raw counts)"
    )
    src.add_argument("--n-top-genes", type=int, help="keep only N highly variable genes")
    src.add_argument("--drop-missing", action="store_true", help="leave cells without a label out")
    _spatialdata_options(score)
    net = score.add_argument_group("training")
    _setting_option(net, "epochs")
    net.add_argument(
        "--lr",
        type=_learning_rate,
        default="auto",
        help="SGD learning rate, or 'auto' (default): 1 / mean squared norm of the cells, "
        "at least 0.001",
    )
    _setting_option(net, "momentum")
    _setting_option(net, "batch_size")
    net.add_argument("--depth", type=int, default=3, choices=(3, 4, 5))
    _setting_option(net, "min_width")
    _setting_option(net, "min_steps")
    net.add_argument(
        "--reference-settings",
        action="store_true",
        help="exactly as the reference package: its training (lr 0.001, its layer widths, "
        "one pass per epoch) and its flags (--flags dynamics)",
    )
    net.add_argument(
        "--no-weighted-sampler", action="store_true", help="shuffle instead of class balancing"
    )
    _setting_option(net, "seed")
    net.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<i>")
    flags = score.add_argument_group("flags and suggestions")
    flags.add_argument(
        "--flags",
        choices=("evidence", "dynamics"),
        default="evidence",
        help="flag from the label evidence (default: out-of-fold models, tissue neighbours, "
        "label-noise model) or from conf and var (the method's own rule)",
    )
    _setting_option(flags, "spatial_neighbours")
    _setting_option(flags, "n_folds")
    flags.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip noise injection (evidence: flag where the score exceeds 0.5)",
    )
    _setting_option(flags, "noise_rate")
    _setting_option(flags, "percentile")
    flags.add_argument("--no-suggest", action="store_true", help="skip suggested corrections")
    _setting_option(flags, "suggest_epochs")
    out = score.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output .h5ad (default: INPUT stem + '_annotatability.h5ad')",
    )
    out.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    out.add_argument(
        "--store-record",
        action="store_true",
        help="also store the cells x epochs probability record in obsm",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    out.add_argument("-v", "--verbose", action="store_true", help="log details")
    score.set_defaults(func=commands.score)

    genes = sub.add_parser(
        "genes",
        help="score genes by their association with confidence (after 'score')",
        description="Gene scores (METHOD 4) into var; a ranked table to CSV.",
    )
    genes.add_argument("input", type=Path, help="scored .h5ad or .zarr (from 'score')")
    genes.add_argument("--label", help=_AUDITED_LABEL_HELP)
    genes.add_argument("--layer", help="score adata.layers[LAYER] instead of X")
    genes.add_argument("--min-counts", type=float, default=100)
    genes.add_argument("--power", type=float, default=1)
    genes.add_argument("--power-low", type=float, default=1)
    genes.add_argument("--csv", type=Path, help="write the ranked gene table here")
    _spatialdata_options(genes)
    _output_options(genes)
    genes.set_defaults(func=commands.genes)

    graph = sub.add_parser(
        "graph",
        help="build the trainability-aware kNN graph (after 'score')",
        description="Trainability-aware graph (METHOD 5) in scanpy's neighbours layout.",
    )
    graph.add_argument("input", type=Path, help="scored .h5ad or .zarr (from 'score')")
    graph.add_argument("--label", help=_AUDITED_LABEL_HELP)
    graph.add_argument("--alpha", type=float, default=0.9)
    graph.add_argument("--k", type=int, default=15)
    graph.add_argument("--use-rep", default="X_pca", help="embedding in obsm (PCA if missing)")
    graph.add_argument("--key-added", default="trainability")
    _spatialdata_options(graph)
    graph.add_argument(
        "--mean-distance",
        choices=("auto", "exact", "estimate"),
        default="auto",
        help="Dbar exactly (O(n^2)) or from random pairs (auto: exact up to 50k cells)",
    )
    _output_options(graph)
    graph.set_defaults(func=commands.graph)

    view = sub.add_parser(
        "view",
        help="open napari on a dataset with the audit widgets docked",
        description="Open napari with the data (or the bundled sample) and the audit widgets.",
    )
    view.add_argument("input", nargs="?", type=Path, help=_INPUT_HELP)
    view.add_argument("--sample", action="store_true", help="the bundled Visium DLPFC sample")
    view.add_argument("--train", action="store_true", help="start training at once")
    view.add_argument("--epochs", type=int, help="epochs of that training (default 50)")
    view.add_argument(
        "--screenshot",
        type=Path,
        help="after training, save a PNG of the window here and quit",
    )
    view.add_argument("-v", "--verbose", action="store_true", help="log details")
    view.set_defaults(func=commands.view)

    apply = sub.add_parser(
        "apply-edits",
        help="replay a curation (cell_id + curated label table) on a dataset",
        description=(
            "Apply an edits table (the CSV/TSV from export-curation, or any table with "
            "cell_id and the curated label) to DATA: the labels go to "
            "obs['KEY_curated'], the log to uns['annotatability_edits']. Everything is "
            "checked first; on any error nothing is written."
        ),
    )
    apply.add_argument("input", type=Path, help=_INPUT_HELP)
    apply.add_argument(
        "edits", type=Path, help="edits table: .csv (comma) or .tsv/.txt (tab) with cell_id"
    )
    apply.add_argument(
        "--label", help="obs column of the annotation (default: uns['label_key'] if present)"
    )
    apply.add_argument(
        "--label-column",
        help="column of the edits holding the curated label (default: curated, KEY_curated, new)",
    )
    apply.add_argument(
        "--allow-new-labels",
        action="store_true",
        help="accept labels that are not yet classes of the annotation",
    )
    _spatialdata_options(apply)
    _output_options(apply, _OUTPUT_HELP)
    apply.set_defaults(func=commands.apply_edits)

    export = sub.add_parser(
        "export-curation",
        help="write the curation as a table: cell_id, original, curated, conf, var, ...",
        description=(
            "One row per cell: cell_id, original, curated, mislabel_score, conf, var, flag, "
            "suggestion, reviewed (CSV, or TSV for .tsv/.txt)."
        ),
    )
    export.add_argument("input", type=Path, help=_INPUT_HELP)
    export.add_argument(
        "--label", help="obs column of the annotation (default: uns['label_key'] if present)"
    )
    export.add_argument(
        "-o", "--output", type=Path, required=True, help="output table: .csv, .tsv or .txt"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _spatialdata_options(export)
    export.add_argument("-v", "--verbose", action="store_true", help="log details")
    export.set_defaults(func=commands.export_curation)

    report = sub.add_parser(
        "report",
        help="write the audit as one self-contained HTML page (figures embedded)",
        description=(
            "The tissue coloured by flags, the data map, the class report, given x suggested "
            "labels, the estimated number of wrong labels, the curation so far, and the "
            "parameters and versions, in one HTML file that opens offline."
        ),
    )
    report.add_argument("input", type=Path, help=_INPUT_HELP)
    report.add_argument("--label", help="the audited annotation (default: the only one)")
    report.add_argument("-o", "--output", type=Path, required=True, help="output .html")
    report.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _spatialdata_options(report)
    report.add_argument("-v", "--verbose", action="store_true", help="log details")
    report.set_defaults(func=commands.report)
    return parser


def _setting_option(group, name: str) -> None:
    """An option for an audit setting, from its one definition (core/settings.py)."""
    from napari_annotatability.core.settings import SETTINGS

    setting = SETTINGS[name]
    kind = type(setting.default)
    group.add_argument(
        setting.option,
        type=kind,
        default=setting.default,
        help=f"{setting.help} (default {setting.default:g})",
    )


def _spatialdata_options(parser) -> None:
    """--table and --coordinate-system, for a SpatialData .zarr input."""
    group = parser.add_argument_group("SpatialData input")
    group.add_argument("--table", help="the table of a SpatialData store (default: its only one)")
    group.add_argument(
        "--coordinate-system",
        help="where to place the cells (default: their only coordinate system)",
    )


_AUDITED_LABEL_HELP = "the audited annotation whose confidence to use (default: the only one)"


def _output_options(parser: argparse.ArgumentParser, output_help: str = "output .h5ad") -> None:
    parser.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file (and an existing graph of that key)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")


def _learning_rate(text: str) -> float | str:
    """``--lr``: a positive number or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, 130 if interrupted)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    try:
        return args.func(args)
    except AnnotatabilityInputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
