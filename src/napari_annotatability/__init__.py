"""Audit and curate cell-type annotations of spatial omics data with Annotatability.

The public Python API is scanpy-style and never imports napari or Qt::

    import napari_annotatability as nat

    nat.annotate(adata, "cell_type")  # obs["cell_type_conf"], ..._flag, ..._suggested
    nat.curate(adata, "cell_type").relabel([0, 5], "B cell")  # obs["cell_type_curated"]
"""

from __future__ import annotations

__version__ = "0.2.0"

from napari_annotatability.api import (
    REFERENCE_SETTINGS,
    annotate,
    annotate_steps,
    apply_edits,
    audit_summary,
    cell_evidence,
    class_report,
    compare_annotations,
    corrected_labels,
    curate,
    export_curation,
    gene_scores,
    ranked_genes,
    read_edits,
    reference_columns,
    spatialdata_cells,
    stored_training_settings,
    suggestion_matrix,
    trainability_graph,
    training_dynamics,
    write_report,
    write_spatialdata,
)
from napari_annotatability.core.anndata_io import read_anndata, save_curated
from napari_annotatability.core.errors import AnnotatabilityInputError

__all__ = [
    "REFERENCE_SETTINGS",
    "AnnotatabilityInputError",
    "__version__",
    "annotate",
    "annotate_steps",
    "apply_edits",
    "audit_summary",
    "cell_evidence",
    "class_report",
    "compare_annotations",
    "corrected_labels",
    "curate",
    "export_curation",
    "gene_scores",
    "ranked_genes",
    "read_anndata",
    "read_edits",
    "reference_columns",
    "save_curated",
    "spatialdata_cells",
    "stored_training_settings",
    "suggestion_matrix",
    "trainability_graph",
    "training_dynamics",
    "write_report",
    "write_spatialdata",
]
