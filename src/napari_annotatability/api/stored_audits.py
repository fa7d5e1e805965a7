"""Audits stored in an AnnData: which one, its summary, its settings, reference names."""

from __future__ import annotations

import dataclasses

import numpy as np
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.dynamics import TrainingParams
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.flag_calibration import (
    MIN_SEPARATION,
    count_is_uncertain,
    describe_errors,
    uncertainty_note,
)
from napari_annotatability.core.scores import HARD

#: The input settings of :func:`annotate`; with the fields of ``TrainingParams`` but
#: ``epochs``, they decide how the network sees and learns the data.
_INPUT_SETTINGS = ("layer", "use_rep", "normalize", "n_top_genes", "drop_missing")
#: How the audit flags cells (stored when not ``None``).
_FLAG_SETTINGS = ("flags", "spatial_neighbours", "n_folds")


def audited_key(adata: AnnData, label_key: str | None = None) -> str:
    """The annotation whose audit to use: ``label_key``, or the only one audited.

    Raises a clear error when that annotation has no audit, or when ``label_key`` is
    ``None`` and ``adata`` holds none or several.
    """
    keys.adopt_unkeyed_audit(adata)
    audited = keys.audited_keys(adata)
    if label_key is not None:
        if label_key not in audited:
            raise AnnotatabilityInputError(
                f"No audit of {label_key!r} in adata.uns[{keys.audit_key(label_key)!r}] "
                f"(audited: {audited or 'none'}); run annotate(adata, {label_key!r}) "
                "(CLI: napari-annotatability score --label) first."
            )
        return label_key
    if len(audited) == 1:
        return audited[0]
    if not audited:
        raise AnnotatabilityInputError(
            "No audit in adata; run annotate(adata, label_key) (CLI: napari-annotatability "
            "score) first."
        )
    raise AnnotatabilityInputError(
        f"adata holds audits of several annotations {audited}; choose one with "
        "label_key=... (CLI: --label)."
    )


def reference_columns(adata: AnnData, label_key: str | None = None) -> None:
    """Copy the audit's confidence and variability to ``obs["conf"]`` and ``obs["var"]``.

    The reference package's names, for notebooks written for it. Copies of
    ``obs[f"{label_key}_conf"]`` and ``obs[f"{label_key}_var"]``; a later audit does not
    update them.
    """
    key = audited_key(adata, label_key)
    adata.obs[keys.REFERENCE_CONF] = adata.obs[keys.conf_key(key)].to_numpy()
    adata.obs[keys.REFERENCE_VAR] = adata.obs[keys.var_key(key)].to_numpy()


def audit_summary(adata: AnnData, label_key: str | None = None) -> str:
    """One sentence on the audit of ``label_key`` (default: the only one in ``adata``).

    How many labels look wrong, by which flags: e.g. ``"about 204 of 3,636 labels
    (5.6%) look wrong (label evidence, calibrated by noise injection)"``; for a
    ``flags="dynamics"`` audit, the count of Hard-to-learn cells by conf and var.
    """
    info = adata.uns[keys.audit_key(audited_key(adata, label_key))]
    n_cells = int(info["n_cells_used"])
    if "evidence" in info:
        evidence = info["evidence"]
        apart = float(evidence.get("separation", float("nan")))
        if evidence["calibration"] == "noise injection":
            how = "calibrated by noise injection"
            if count_is_uncertain(evidence["calibration"], apart):
                how += "; " + uncertainty_note(
                    apart,
                    float(evidence.get("label_accuracy", float("nan"))),
                    float(evidence.get("commonest_share", float("nan"))),
                )
        elif apart < MIN_SEPARATION:
            how = (
                f"mislabel score > 0.5; uncertain: injected errors scored like correct "
                f"labels, AUROC {apart:.2f}"
            )
        else:
            how = "mislabel score > 0.5"
        return f"{describe_errors(int(evidence['n_errors']), n_cells)} (label evidence, {how})"
    hard = int(info.get("flag_counts", {}).get(HARD, 0))
    return f"{hard:,} of {n_cells:,} labels flagged {HARD} by training dynamics"


def stored_training_settings(adata: AnnData, label_key: str) -> dict:
    """The input and training settings of the audit of ``label_key``, to train alike.

    Read from ``uns[f"{label_key}_annotatability"]["params"]`` (written by
    :func:`annotate`, which stores every setting but leaves out those that are ``None``).
    Every training setting is returned, an absent one as ``None`` (e.g. ``min_width`` of
    a run at the reference's widths, whose default is not ``None``); input settings only
    when stored (their defaults are ``None`` anyway). Empty when there is no such audit.
    """
    keys.adopt_unkeyed_audit(adata)
    params = (keys.audit_info(adata, label_key) or {}).get("params", {})
    if not params:
        return {}
    training = [f.name for f in dataclasses.fields(TrainingParams) if f.name != "epochs"]
    settings = {key: params[key] for key in _INPUT_SETTINGS + _FLAG_SETTINGS if key in params}
    settings.update({key: params.get(key) for key in training})
    # h5py gives numpy scalars back
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in settings.items()}


def confidence_key(adata: AnnData, label_key: str | None, conf_key: str | None) -> str:
    """The confidence column to use: ``conf_key``, else that of the audit of ``label_key``."""
    if conf_key is None:
        return keys.conf_key(audited_key(adata, label_key))
    if conf_key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"No confidence in adata.obs[{conf_key!r}]; run annotate(adata, label_key) "
            "(CLI: napari-annotatability score) first, or leave conf_key out."
        )
    return conf_key
