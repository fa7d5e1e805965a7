"""Audit and curate cell-type annotations of spatial omics data with Annotatability.

The public Python API is scanpy-style and never imports napari or Qt::

    import napari_annotatability as nat

    nat.annotate(adata, "cell_type")  # writes obs["conf"], obs["var"], flags, suggestions
"""

from __future__ import annotations

__version__ = "0.1.0"

from napari_annotatability.api import (
    annotate,
    annotate_steps,
    compare_annotations,
    corrected_labels,
    gene_scores,
    ranked_genes,
    trainability_graph,
    training_dynamics,
)
from napari_annotatability.core.errors import AnnotatabilityInputError

__all__ = [
    "AnnotatabilityInputError",
    "__version__",
    "annotate",
    "annotate_steps",
    "compare_annotations",
    "corrected_labels",
    "gene_scores",
    "ranked_genes",
    "trainability_graph",
    "training_dynamics",
]
