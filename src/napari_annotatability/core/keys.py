"""What goes where in AnnData: every key the package writes, and reading audits back.

One place defines every key the package writes. Every result of an audit names the
annotation it audited, so audits of several annotations (e.g. ``cell_type`` and, after
curating, ``cell_type_curated``) sit side by side and never mix:

- ``obs[f"{label_key}_conf"]``, ``obs[f"{label_key}_var"]``: confidence and variability
  (:func:`napari_annotatability.reference_columns` copies them to the reference package's
  ``obs["conf"]`` and ``obs["var"]``).
- ``obs[f"{label_key}_flag"]``: Easy-to-learn / Ambiguous / Hard-to-learn (from the label
  evidence by default; from training dynamics with ``flags="dynamics"``).
- ``obs[f"{label_key}_mislabel_score"]``: probability that the label is wrong (label evidence).
- ``obs[f"{label_key}_ambiguity"]``: how evenly the evidence splits between classes.
- ``obs[f"{label_key}_dynamics_flag"]``: the method's own flags from conf and var.
- ``obs[f"{label_key}_suggested"]``: suggested label of Hard-to-learn cells (NaN elsewhere).
- ``obsm[f"{label_key}_annotatability_probabilities"]``: cells x epochs record, when asked
  (``store_record``; the training widget keeps it for the evidence view).
- ``obsm[f"{label_key}_class_probabilities"]``: cells x classes probabilities of the
  out-of-fold models before they see the label (label evidence; columns in the order of
  ``uns[...]["classes"]``).
- ``uns[f"{label_key}_annotatability"]``: parameters, seed, device, cut-offs, counts,
  versions.

Files written before results were keyed by annotation (one audit in ``obs["conf"]``,
``obs["var"]`` and ``uns["annotatability"]``) are moved to these names when read
(:func:`adopt_unkeyed_audit`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from napari_annotatability.core.errors import AnnotatabilityInputError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: The reference package's (and this package's before 0.2) confidence and variability.
REFERENCE_CONF, REFERENCE_VAR = "conf", "var"
#: Where this package kept its one audit before results were keyed by annotation.
UNKEYED_UNS, UNKEYED_RECORD = "annotatability", "annotatability_probabilities"
_AUDIT_SUFFIX = "_annotatability"


def conf_key(label_key: str) -> str:
    """``obs`` column of the confidence of annotation ``label_key``."""
    return f"{label_key}_conf"


def var_key(label_key: str) -> str:
    """``obs`` column of the variability of annotation ``label_key``."""
    return f"{label_key}_var"


def audit_key(label_key: str) -> str:
    """``uns`` entry of the audit of annotation ``label_key`` (parameters, counts, ...)."""
    return f"{label_key}{_AUDIT_SUFFIX}"


def record_key(label_key: str) -> str:
    """``obsm`` entry of the cells x epochs probability record of ``label_key``."""
    return f"{label_key}{_AUDIT_SUFFIX}_probabilities"


def class_probabilities_key(label_key: str) -> str:
    """``obsm`` entry of the out-of-fold class probabilities (label evidence) of ``label_key``."""
    return f"{label_key}_class_probabilities"


def audited_keys(adata: AnnData) -> list[str]:
    """The annotations audited in ``adata`` (those with an ``uns`` audit entry), in order."""
    keys = []
    for name, info in adata.uns.items():
        if name.endswith(_AUDIT_SUFFIX) and isinstance(info, dict):
            label_key = info.get("label_key")
            if label_key is not None and audit_key(str(label_key)) == name:
                keys.append(str(label_key))
    return keys


def audit_info(adata: AnnData, label_key: str) -> dict | None:
    """The stored audit of ``label_key`` (``uns[f"{label_key}_annotatability"]``), if any."""
    info = adata.uns.get(audit_key(label_key))
    return info if isinstance(info, dict) and info else None


def duplicated_cell_ids(adata: AnnData) -> str:
    """What is duplicated in ``adata.obs_names``, or ``""``.

    E.g. ``"3 ids appear more than once, e.g. 'AAAC-1' x2"``.
    """
    names = adata.obs_names
    if names.is_unique:
        return ""
    counts = names.value_counts()
    counts = counts[counts > 1]
    examples = ", ".join(f"{str(name)!r} x{n}" for name, n in counts.head(3).items())
    ids = "1 id appears" if len(counts) == 1 else f"{len(counts):,} ids appear"
    return f"{ids} more than once, e.g. {examples}"


def require_unique_cell_ids(adata: AnnData) -> None:
    """Refuse cell ids that are not unique: edits and exports are keyed by them."""
    duplicated = duplicated_cell_ids(adata)
    if duplicated:
        raise AnnotatabilityInputError(
            f"adata.obs_names (the cell ids) are not unique: {duplicated}. Edits and "
            "exported tables are keyed by cell id; make them unique first: "
            "adata.obs_names_make_unique() in Python, then save the file."
        )


def adopt_unkeyed_audit(adata: AnnData) -> str | None:
    """Move an audit written before results were keyed by annotation to its keyed names.

    Such files hold one audit in ``obs["conf"]``, ``obs["var"]``,
    ``uns["annotatability"]`` (with its ``"label_key"``) and possibly
    ``obsm["annotatability_probabilities"]``; they are renamed to :func:`conf_key`,
    :func:`var_key`, :func:`audit_key` and :func:`record_key` of that annotation (nothing
    is lost). Does nothing when there is no such audit or the annotation already has a
    keyed one. Returns the annotation adopted, or ``None``.
    """
    info = adata.uns.get(UNKEYED_UNS)
    if not isinstance(info, dict) or "label_key" not in info:
        return None
    label_key = str(info["label_key"])
    if audit_key(label_key) in adata.uns:
        return None
    obs = adata.obs
    renames = {REFERENCE_CONF: conf_key(label_key), REFERENCE_VAR: var_key(label_key)}
    obs.rename(columns={k: v for k, v in renames.items() if k in obs.columns}, inplace=True)
    adata.uns[audit_key(label_key)] = adata.uns.pop(UNKEYED_UNS)
    if UNKEYED_RECORD in adata.obsm:
        adata.obsm[record_key(label_key)] = adata.obsm[UNKEYED_RECORD]
        del adata.obsm[UNKEYED_RECORD]
    logger.info(
        "Moved the audit of %r written by an earlier version to the keyed names (%s, %s, %s).",
        label_key,
        conf_key(label_key),
        var_key(label_key),
        audit_key(label_key),
    )
    return label_key


def flag_key(label_key: str) -> str:
    """``obs`` column of the flags for annotation ``label_key``."""
    return f"{label_key}_flag"


def mislabel_key(label_key: str) -> str:
    """``obs`` column of the mislabel score (label evidence) for annotation ``label_key``."""
    return f"{label_key}_mislabel_score"


def ambiguity_key(label_key: str) -> str:
    """``obs`` column of the ambiguity (label evidence) for annotation ``label_key``."""
    return f"{label_key}_ambiguity"


def dynamics_flag_key(label_key: str) -> str:
    """``obs`` column of the training-dynamics flags (METHOD section 2)."""
    return f"{label_key}_dynamics_flag"


def suggestion_key(label_key: str) -> str:
    """``obs`` column of the suggested corrections for annotation ``label_key``."""
    return f"{label_key}_suggested"
