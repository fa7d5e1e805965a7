"""Training dynamics alone (METHOD section 1), two annotations compared, corrections applied."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.dynamics import DynamicsRecord, EpochProgress, TrainingParams
from napari_annotatability.core.dynamics import training_dynamics as _dynamics
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.inputs import encode_second_labels, prepare_inputs
from napari_annotatability.core.results import expand_values
from napari_annotatability.core.scores import confidence_and_variability
from napari_annotatability.core.steps import run_steps


def training_dynamics(
    adata: AnnData,
    label_key: str,
    *,
    other_key: str | None = None,
    layer: str | None = None,
    use_rep: str | None = None,
    normalize: bool = False,
    n_top_genes: int | None = None,
    drop_missing: bool = False,
    device: str = "auto",
    progress: bool | Callable[[EpochProgress], None] = False,
    **params,
) -> DynamicsRecord:
    """Run METHOD section 1 only and return the probability record.

    Parameters
    ----------
    adata, label_key
        Data and annotation.
    other_key
        A second annotation over the same classes whose probabilities are recorded
        at every epoch too (the reference's ``follow_train_dyn_two_lables``).
    layer, use_rep, normalize, n_top_genes, drop_missing, device
        As in :func:`annotate`.
    progress
        ``True`` for a progress bar, or a callable receiving each update.
    **params
        Fields of :class:`~napari_annotatability.core.dynamics.TrainingParams`.

    Returns
    -------
    The record of the cells used (all cells, or those with a label if ``drop_missing``).
    """
    inputs = prepare_inputs(
        adata,
        label_key,
        layer=layer,
        use_rep=use_rep,
        normalize=normalize,
        n_top_genes=n_top_genes,
        drop_missing=drop_missing,
    )
    other = (
        None
        if other_key is None
        else encode_second_labels(adata, other_key, inputs.labels.classes, inputs.cell_mask)
    )
    p = TrainingParams(**params)
    steps = _dynamics(
        inputs.X,
        inputs.labels.codes,
        inputs.labels.n_classes,
        p,
        device=device,
        other_codes=other,
    )
    return run_steps(steps, progress, total=p.epochs)


def compare_annotations(adata: AnnData, label_key: str, other_key: str, **kwargs) -> pd.DataFrame:
    """Train on one annotation while recording a second one (METHOD 1.7).

    Writes ``obs[f"conf_{label_key}"]``/``obs[f"var_{label_key}"]`` for the annotation
    trained on and ``obs[f"conf_{other_key}"]``/``obs[f"var_{other_key}"]`` for the
    second one (an audit's ``obs[f"{label_key}_conf"]`` is left alone), and returns the
    four columns as a table (NaN for left-out cells).

    Parameters
    ----------
    adata, label_key
        Data and the annotation the network trains on.
    other_key
        The second annotation (same class set).
    **kwargs
        As for :func:`training_dynamics` (input, preprocessing, device, training).
    """
    record = training_dynamics(adata, label_key, other_key=other_key, **kwargs)
    # the cells used: all, or those with a label when drop_missing=True
    mask = adata.obs[label_key].notna().to_numpy()
    conf, var = confidence_and_variability(record.probabilities)
    conf_b, var_b = confidence_and_variability(record.other_probabilities)
    table = pd.DataFrame(
        {
            f"conf_{label_key}": expand_values(conf, mask, np.nan),
            f"var_{label_key}": expand_values(var, mask, np.nan),
            f"conf_{other_key}": expand_values(conf_b, mask, np.nan),
            f"var_{other_key}": expand_values(var_b, mask, np.nan),
        },
        index=adata.obs_names,
    )
    for column in table.columns:
        adata.obs[column] = table[column].to_numpy()
    return table


def corrected_labels(adata: AnnData, label_key: str) -> pd.Series:
    """The annotation with the suggested corrections applied (the original is untouched).

    Raises a clear error when :func:`annotate` has not written suggestions yet.
    """
    key = keys.suggestion_key(label_key)
    if key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"No suggestions in adata.obs[{key!r}]; run annotate(adata, {label_key!r}) first."
        )
    original = adata.obs[label_key].astype(object)
    suggested = adata.obs[key].astype(object)
    merged = original.where(suggested.isna(), suggested)
    categories = sorted(set(merged.dropna().astype(str)))
    return pd.Series(
        pd.Categorical(merged, categories=categories),
        index=adata.obs_names,
        name=f"{label_key}_corrected",
    )
