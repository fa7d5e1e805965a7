"""Pick and validate what the network trains on: the matrix and the annotation.

Every bad input raises :class:`~napari_annotatability.core.errors.AnnotatabilityInputError`
with a message naming the key, what was found and what to do.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

Matrix = np.ndarray | sp.csr_matrix

#: Rows checked at a time when scanning a dense matrix for NaN/inf (bounded memory).
_FINITE_CHECK_ROWS = 16384


@dataclass(frozen=True)
class EncodedLabels:
    """An annotation as integer codes.

    Attributes
    ----------
    codes
        ``int64`` array, one code per kept cell, indexing :attr:`classes`.
    classes
        Sorted unique labels (as strings), the network's output classes.
    key
        The ``adata.obs`` column the labels came from.
    """

    codes: np.ndarray
    classes: tuple[str, ...]
    key: str

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def counts(self) -> np.ndarray:
        """Number of cells per class."""
        return np.bincount(self.codes, minlength=self.n_classes)


@dataclass(frozen=True)
class TrainingInputs:
    """Validated arrays ready for training.

    Attributes
    ----------
    X
        Cells x features, ``float32``; a dense array or a CSR matrix (never densified).
    labels
        The encoded annotation of the kept cells.
    cell_mask
        Boolean mask over ``adata.obs_names``: which cells are used (cells with a
        missing label are dropped only when asked).
    feature_names
        Names of the input features (after any gene selection).
    source
        Human-readable description of where ``X`` came from.
    """

    X: Matrix
    labels: EncodedLabels
    cell_mask: np.ndarray
    feature_names: tuple[str, ...]
    source: str

    @property
    def n_cells(self) -> int:
        """Number of cells used."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return int(self.X.shape[1])


def select_matrix(
    adata: AnnData, *, layer: str | None = None, use_rep: str | None = None
) -> tuple[Matrix, tuple[str, ...], str]:
    """Return the matrix to train on, its feature names and a description of its source.

    Parameters
    ----------
    adata
        The annotated data.
    layer
        A key of ``adata.layers`` to use instead of ``adata.X``.
    use_rep
        A key of ``adata.obsm`` (e.g. ``"X_pca"``) to use instead of ``adata.X``.

    Returns
    -------
    The matrix as ``float32`` (CSR if it was sparse), the feature names and the source.
    """
    if layer is not None and use_rep is not None:
        raise AnnotatabilityInputError(
            f"Both layer={layer!r} and use_rep={use_rep!r} were given; choose one input."
        )
    if layer is not None:
        if layer not in adata.layers:
            raise AnnotatabilityInputError(
                f"Layer {layer!r} not found in adata.layers; available layers: "
                f"{sorted(adata.layers.keys()) or 'none'}."
            )
        matrix, names, source = adata.layers[layer], tuple(adata.var_names), f"layers[{layer!r}]"
    elif use_rep is not None:
        if use_rep not in adata.obsm:
            raise AnnotatabilityInputError(
                f"Representation {use_rep!r} not found in adata.obsm; available keys: "
                f"{sorted(adata.obsm.keys()) or 'none'}."
            )
        matrix = adata.obsm[use_rep]
        if isinstance(matrix, pd.DataFrame):
            names, matrix = tuple(map(str, matrix.columns)), matrix.to_numpy()
        else:
            names = tuple(f"{use_rep}_{i}" for i in range(np.shape(matrix)[1]))
        source = f"obsm[{use_rep!r}]"
    else:
        if adata.X is None:
            raise AnnotatabilityInputError(
                "adata.X is empty; pass layer=... or use_rep=... to choose the input matrix."
            )
        matrix, names, source = adata.X, tuple(adata.var_names), "X"
    return _as_float32(matrix, source), names, source


def _as_float32(matrix: object, source: str) -> Matrix:
    if sp.issparse(matrix):
        out = sp.csr_matrix(matrix)
        if out.dtype != np.float32:
            _require_numeric(out.dtype, source)
            out = out.astype(np.float32)
        out.sum_duplicates()
        return out
    if hasattr(matrix, "to_memory"):  # backed/lazy arrays
        matrix = matrix.to_memory()
    arr = np.asarray(matrix)
    _require_numeric(arr.dtype, source)
    if arr.ndim != 2:
        raise AnnotatabilityInputError(
            f"{source} must be a 2-D cells x features matrix; found shape {arr.shape}."
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _require_numeric(dtype: np.dtype, source: str) -> None:
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise AnnotatabilityInputError(
            f"{source} holds values of type {dtype}, not numbers; choose a numeric matrix."
        )


def check_matrix(X: Matrix, source: str = "X") -> None:
    """Raise a clear error for a matrix without features or with NaN/inf values.

    Parameters
    ----------
    X
        Dense array or CSR matrix.
    source
        Where the matrix came from, for the message.
    """
    n_cells, n_features = X.shape
    if n_features == 0:
        raise AnnotatabilityInputError(
            f"{source} has zero features ({n_cells} cells x 0 columns); "
            "choose a matrix with at least one feature (layer=..., use_rep=...)."
        )
    if n_cells == 0:
        raise AnnotatabilityInputError(f"{source} has no cells.")
    bad = _count_non_finite(X)
    if bad:
        raise AnnotatabilityInputError(
            f"{source} contains {bad} NaN or infinite value(s); fill or remove them "
            "(e.g. np.nan_to_num) or choose another layer before training."
        )


def _count_non_finite(X: Matrix) -> int:
    if sp.issparse(X):
        return int(np.count_nonzero(~np.isfinite(X.data)))
    return sum(
        int(np.count_nonzero(~np.isfinite(X[start : start + _FINITE_CHECK_ROWS])))
        for start in range(0, X.shape[0], _FINITE_CHECK_ROWS)
    )


def encode_labels(
    adata: AnnData, label_key: str, *, drop_missing: bool = False
) -> tuple[EncodedLabels, np.ndarray]:
    """Encode ``adata.obs[label_key]`` as integer codes over its sorted classes.

    Parameters
    ----------
    adata
        The annotated data.
    label_key
        Column of ``adata.obs`` holding the annotation.
    drop_missing
        Drop cells whose label is missing instead of raising an error.

    Returns
    -------
    The encoded labels of the kept cells and a boolean mask of kept cells.
    """
    if label_key not in adata.obs.columns:
        categorical = [
            c for c in adata.obs.columns if isinstance(adata.obs[c].dtype, pd.CategoricalDtype)
        ]
        raise AnnotatabilityInputError(
            f"Label key {label_key!r} not found in adata.obs. Categorical columns: "
            f"{categorical or 'none'}; all columns: {list(adata.obs.columns)}."
        )
    column = adata.obs[label_key]
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.dropna().to_numpy()
        if values.size and not np.all(np.equal(np.mod(values, 1), 0)):
            raise AnnotatabilityInputError(
                f"Label column {label_key!r} holds continuous numbers (e.g. {values[0]!r}), "
                "not an annotation; choose a categorical column of cell types."
            )
        column = column.astype("Int64")
    missing = column.isna().to_numpy()
    n_missing = int(missing.sum())
    if n_missing and not drop_missing:
        raise AnnotatabilityInputError(
            f"Label column {label_key!r} has {n_missing} cell(s) with a missing label "
            f"(of {adata.n_obs}); pass drop_missing=True (CLI: --drop-missing) to leave "
            "them out of training, or fill them in."
        )
    keep = ~missing
    labels = column[keep].astype(str).to_numpy()
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        found = f"only {classes[0]!r}" if classes.size else "no labels"
        raise AnnotatabilityInputError(
            f"Label column {label_key!r} has fewer than 2 classes ({found}); "
            "Annotatability needs at least two cell types to compare."
        )
    encoded = EncodedLabels(codes.astype(np.int64), tuple(map(str, classes)), label_key)
    singletons = [c for c, n in zip(encoded.classes, encoded.counts(), strict=True) if n == 1]
    if singletons:
        warnings.warn(
            f"Label column {label_key!r}: {len(singletons)} class(es) have a single cell "
            f"({', '.join(map(repr, singletons[:5]))}{', ...' if len(singletons) > 5 else ''}); "
            "their confidence is unreliable and the weighted sampler will draw them often.",
            UserWarning,
            stacklevel=3,
        )
    return encoded, keep


def encode_second_labels(
    adata: AnnData, other_key: str, classes: Sequence[str], cell_mask: np.ndarray
) -> np.ndarray:
    """Encode a second annotation over the classes of the first one.

    Parameters
    ----------
    adata
        The annotated data.
    other_key
        Column of ``adata.obs`` with the second annotation.
    classes
        The classes of the trained annotation.
    cell_mask
        The cells used for training.

    Returns
    -------
    ``int64`` codes of the second annotation for the kept cells.
    """
    if other_key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"Second label key {other_key!r} not found in adata.obs; "
            f"columns: {list(adata.obs.columns)}."
        )
    column = adata.obs[other_key][cell_mask]
    if column.isna().any():
        raise AnnotatabilityInputError(
            f"Second label column {other_key!r} has {int(column.isna().sum())} missing "
            "label(s) among the cells used; fill them in first."
        )
    values = column.astype(str).to_numpy()
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(np.unique(values)) - lookup.keys())
    if unknown:
        raise AnnotatabilityInputError(
            f"Second label column {other_key!r} has classes not in the trained annotation: "
            f"{unknown[:10]}; both annotations must share one class set {list(classes)}."
        )
    return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=values.size)


def preprocess(
    X: Matrix,
    feature_names: Sequence[str],
    *,
    normalize: bool = False,
    n_top_genes: int | None = None,
    source: str = "X",
) -> tuple[Matrix, tuple[str, ...]]:
    """Optionally normalise + log1p and select highly variable genes (with scanpy).

    The input is not modified. Sparse input stays sparse.

    Parameters
    ----------
    X
        Cells x genes.
    feature_names
        Gene names.
    normalize
        Apply ``sc.pp.normalize_total`` (target 1e4) and ``sc.pp.log1p``; expects counts.
    n_top_genes
        Keep this many highly variable genes (``sc.pp.highly_variable_genes``,
        seurat flavour on log data).
    source
        Where the matrix came from, for messages.

    Returns
    -------
    The processed matrix and its feature names.
    """
    if not normalize and n_top_genes is None:
        return X, tuple(feature_names)
    import scanpy as sc

    ad = AnnData(X=X.copy())
    ad.var_names = [str(n) for n in feature_names]
    if normalize:
        minimum = ad.X.data.min(initial=0) if sp.issparse(ad.X) else ad.X.min(initial=0)
        if minimum < 0:
            raise AnnotatabilityInputError(
                f"normalize=True expects counts, but {source} has negative values "
                f"(min {minimum:.3g}); it looks already scaled: use normalize=False."
            )
        sc.pp.normalize_total(ad, target_sum=1e4)
        sc.pp.log1p(ad)
    if n_top_genes is not None:
        if n_top_genes < 1:
            raise AnnotatabilityInputError(f"n_top_genes must be >= 1; got {n_top_genes}.")
        if n_top_genes < ad.n_vars:
            sc.pp.highly_variable_genes(ad, n_top_genes=n_top_genes, flavor="seurat")
            # exactly n_top_genes (scanpy's cut-off can keep ties), in the original order
            ranked = ad.var["dispersions_norm"].fillna(-np.inf).to_numpy()
            top = np.sort(np.argsort(-ranked, kind="stable")[:n_top_genes])
            ad = ad[:, top].copy()
            logger.info("Selected %d highly variable genes of %d.", ad.n_vars, len(feature_names))
    return _as_float32(ad.X, source), tuple(ad.var_names)


def prepare_inputs(
    adata: AnnData,
    label_key: str,
    *,
    layer: str | None = None,
    use_rep: str | None = None,
    normalize: bool = False,
    n_top_genes: int | None = None,
    drop_missing: bool = False,
) -> TrainingInputs:
    """Select, validate and optionally preprocess the matrix and annotation.

    Parameters
    ----------
    adata
        The annotated data (not modified).
    label_key
        Column of ``adata.obs`` holding the annotation.
    layer, use_rep
        Train on ``adata.layers[layer]`` or ``adata.obsm[use_rep]`` instead of ``X``.
    normalize
        Normalise to 1e4 counts per cell and log1p (for raw counts).
    n_top_genes
        Keep only this many highly variable genes.
    drop_missing
        Leave cells with a missing label out instead of raising.

    Returns
    -------
    The validated training inputs.
    """
    labels, keep = encode_labels(adata, label_key, drop_missing=drop_missing)
    X, names, source = select_matrix(adata, layer=layer, use_rep=use_rep)
    if not keep.all():
        logger.info("Leaving out %d cell(s) with a missing %r label.", (~keep).sum(), label_key)
        X = X[keep]
    check_matrix(X, source)
    X, names = preprocess(X, names, normalize=normalize, n_top_genes=n_top_genes, source=source)
    return TrainingInputs(X=X, labels=labels, cell_mask=keep, feature_names=names, source=source)
