"""Scanpy-style functions over AnnData: audit an annotation, score genes, build the graph, curate.

Split by topic (:mod:`.audit`, :mod:`.stored_audits`, :mod:`.dynamics`, :mod:`.genes`,
:mod:`.graph`, :mod:`.edits`, :mod:`.spatialdata`); everything is available from here and from
``napari_annotatability``:

>>> import napari_annotatability as nat
>>> nat.annotate(adata, "cell_type")            # doctest: +SKIP
>>> adata.obs[["cell_type_conf", "cell_type_flag", "cell_type_suggested"]]  # doctest: +SKIP
"""

from napari_annotatability.api.audit import (
    FLAG_METHODS,
    REFERENCE_SETTINGS,
    annotate,
    annotate_steps,
    total_steps,
)
from napari_annotatability.api.dynamics import (
    compare_annotations,
    corrected_labels,
    training_dynamics,
)
from napari_annotatability.api.edits import (
    TABLE_SEPARATORS,
    apply_edits,
    curate,
    export_curation,
    read_edits,
    table_separator,
)
from napari_annotatability.api.genes import compute_gene_scores, gene_scores
from napari_annotatability.api.graph import compute_trainability_graph, trainability_graph
from napari_annotatability.api.report import (
    cell_evidence,
    class_report,
    suggestion_matrix,
    write_report,
)
from napari_annotatability.api.spatialdata import spatialdata_cells, write_spatialdata
from napari_annotatability.api.stored_audits import (
    audit_summary,
    audited_key,
    confidence_key,
    reference_columns,
    stored_training_settings,
)
from napari_annotatability.core.results import (
    AnnotatabilityResult,
    GeneScoresResult,
    GraphResult,
    ranked_genes,
)
from napari_annotatability.core.steps import run_steps

__all__ = [
    "FLAG_METHODS",
    "REFERENCE_SETTINGS",
    "TABLE_SEPARATORS",
    "AnnotatabilityResult",
    "GeneScoresResult",
    "GraphResult",
    "annotate",
    "annotate_steps",
    "apply_edits",
    "audit_summary",
    "audited_key",
    "cell_evidence",
    "class_report",
    "compare_annotations",
    "compute_gene_scores",
    "compute_trainability_graph",
    "confidence_key",
    "corrected_labels",
    "curate",
    "export_curation",
    "gene_scores",
    "ranked_genes",
    "read_edits",
    "reference_columns",
    "run_steps",
    "spatialdata_cells",
    "stored_training_settings",
    "suggestion_matrix",
    "table_separator",
    "total_steps",
    "trainability_graph",
    "training_dynamics",
    "write_report",
    "write_spatialdata",
]
