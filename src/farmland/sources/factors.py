"""Source apportionment of the soil samples, summarised for clusters and candidates.

:func:`factor_analysis` runs, on the usable soil samples:

1. the sample matrix with EPA equation-based uncertainties (:mod:`.matrix`);
2. the PMF factor count from the Q(robust)/Q_exp diagnostics for p = 2..6, unless given
   (:func:`.pmf_uncertainty.choose_factor_count`);
3. PMF (:class:`.pmf.PMF`, several seeded starts) and the bootstrap ranges of its
   profiles (:func:`.pmf_uncertainty.bootstrap_profiles`);
4. PCA/APCS-MLR with the same number of factors (:class:`.apcs.APCS`), matched to the
   PMF factors by profile correlation, as the classical comparison analysts know from SPSS.

It then says what each factor means for Cd: each sample's Cd split over the PMF factors
(gᵢₖ fₖ,cd / Σₖ gᵢₖ fₖ,cd), the mean split over each cluster's samples, and each factor's
label (the elements of which it holds at least 40 % of the modelled total).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from farmland.sources.apcs import APCS
from farmland.sources.matrix import sample_matrix
from farmland.sources.pmf import PMF
from farmland.sources.pmf_uncertainty import (
    bootstrap_profiles,
    choose_factor_count,
    factor_diagnostics,
    match_factors,
)

__all__ = ["FactorSummary", "factor_analysis"]

log = logging.getLogger(__name__)

#: a factor is labelled with the elements of which it holds at least this share
LABEL_SHARE = 40.0
#: fewest usable samples PMF is run on
MIN_SAMPLES = 30


@dataclass
class FactorSummary:
    """PMF and APCS-MLR results in the shapes the outputs need.

    Attributes
    ----------
    table
        ``factors.csv``: one row per method, factor and element.
    contributions
        Per sample: ``sample_id``, ``cluster_id``, ``cd_share_<F>`` per PMF factor,
        ``main_factor``.
    cluster_shares
        Index ``cluster_id``: ``factor_<F>_cd_share`` (mean over the cluster's samples)
        and ``main_factor``, ``main_factor_label``.
    cluster_excess
        Index ``cluster_id``, one column per element: what the factors raised in the
        cluster add over the samples outside every cluster, relative to their median,
        Σₖ max(0, ḡₖ(cluster) − ḡₖ(outside)) fₖⱼ / median outsideⱼ.
    summary
        Figures for ``sources.json``.
    """

    table: pd.DataFrame
    contributions: pd.DataFrame
    cluster_shares: pd.DataFrame
    cluster_excess: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict[str, Any] = field(default_factory=dict)


def factor_analysis(samples: pd.DataFrame, sample_cluster: pd.Series, *,
                    n_factors: int | None = None, seed: int = 0, n_starts: int = 5,
                    n_boot: int = 50) -> FactorSummary | None:
    """PMF and APCS-MLR of the usable samples (None when too few samples or metals).

    Every factor count p = 2..6 is fitted with ``n_starts`` seeded random starts (the
    best start refined to convergence); the chosen p keeps that fit. ``n_boot``
    bootstrap runs give the profile ranges.
    """
    usable = samples
    if "usable" in samples:
        usable = samples.loc[samples["usable"].fillna(False).astype(bool)]
    X, U, elements, ids = sample_matrix(usable)
    varies = np.ptp(X, axis=0) > 0
    if not varies.all():  # a constant column (all ND, or one value) carries no factor
        log.warning("source apportionment leaves out %s: the same value in every sample",
                    ",".join(e for e, v in zip(elements, varies, strict=True) if not v))
        X, U = X[:, varies], U[:, varies]
        elements = tuple(e for e, v in zip(elements, varies, strict=True) if v)
    if len(X) < MIN_SAMPLES or len(elements) < 3 or "cd" not in elements:
        log.warning("source apportionment skipped: %d usable samples, elements %s",
                    len(X), ",".join(elements))
        return None
    diagnostics, fitted = None, {}
    if n_factors is None:
        diagnostics = factor_diagnostics(X, U, range(2, min(7, len(elements))), models=fitted,
                                         seed=seed, n_starts=n_starts)
        n_factors = choose_factor_count(diagnostics)
    model = fitted.get(n_factors) or PMF(n_factors, seed=seed, n_starts=n_starts).fit(X, U)
    model.elements_, model.sample_ids_ = tuple(elements), np.asarray(ids)
    boot = bootstrap_profiles(model, X, U, n_boot=n_boot, seed=seed)
    apcs = APCS(n_factors).fit(X, elements=elements, sample_ids=ids)
    labels = _labels(model)
    table, match = _table(model, boot, apcs, labels, X)
    contributions = _cd_shares(model, ids, sample_cluster)
    shares = _cluster_shares(contributions, labels)
    summary = {
        "n_factors": int(n_factors), "chosen": "given" if diagnostics is None else "Q/Qexp",
        "n_samples": len(X), "elements": list(elements),
        "q_true": round(float(model.q_true_), 1), "q_robust": round(float(model.q_robust_), 1),
        "q_expected": int(model.q_expected_),
        "q_ratio": round(float(model.q_robust_ / model.q_expected_), 3),
        "labels": labels, "bootstrap_runs": int(n_boot),
        "bootstrap_mapped": {r.factor: round(float(r.share_mapped), 3)
                             for r in boot.mapped.itertuples()},
        "apcs_r2": {e: round(float(v), 3) for e, v in zip(elements, apcs.r2_, strict=True)},
        "pmf_apcs_correlation": match,
        "diagnostics": None if diagnostics is None else diagnostics.round(4).to_dict("records"),
    }
    excess = _cluster_excess(model, X, ids, sample_cluster)
    return FactorSummary(table, contributions, shares, excess, summary)


def _labels(model: PMF) -> dict[str, str]:
    """Factor → its elements holding ≥ :data:`LABEL_SHARE` % of their modelled total."""
    prof = model.profile_table()
    out = {}
    for factor, rows in prof.groupby("factor", sort=False):
        top = rows[rows["percent_of_species"] >= LABEL_SHARE].sort_values(
            "percent_of_species", ascending=False)["element"]
        out[str(factor)] = "-".join(e.capitalize() for e in top) or "mixed"
    return out


def _table(model: PMF, boot, apcs: APCS, labels: dict[str, str],
           X: np.ndarray) -> tuple[pd.DataFrame, dict[str, float]]:
    """PMF profiles with bootstrap ranges, then the APCS-MLR profiles matched to them."""
    pmf = model.profile_table().merge(
        boot.summary[["factor", "element", "p05", "p50", "p95"]], on=["factor", "element"],
        how="left").merge(boot.mapped[["factor", "share_mapped"]], on="factor", how="left")
    pmf.insert(0, "method", "PMF")
    pmf.insert(2, "label", pmf["factor"].map(labels))
    apcs_profiles = apcs.contributions_.mean(axis=0)  # (p, m) mg/kg of an average sample
    scale = X.mean(axis=0)
    idx, corr = match_factors(model.profiles_, np.clip(apcs_profiles, 0, None), scale,
                              min_correlation=-1.0)
    species = np.clip(apcs_profiles, 0, None).sum(axis=0)
    rows = []
    for k, factor in enumerate(model.factors_):
        j = int(idx[k])
        if j < 0:
            continue
        for e, element in enumerate(model.elements_):
            rows.append({"method": "APCS-MLR", "factor": apcs.factors_[j], "label": "",
                         "matched_pmf_factor": factor, "profile_correlation": round(
                             float(corr[k]), 4), "element": element,
                         "mg_kg": apcs_profiles[j, e],
                         "percent_of_species": 100 * max(apcs_profiles[j, e], 0) / species[e]
                         if species[e] > 0 else 0.0,
                         "r2": apcs.r2_[e]})
    table = pd.concat([pmf, pd.DataFrame(rows)], ignore_index=True)
    match = {f: round(float(corr[k]), 4) for k, f in enumerate(model.factors_) if idx[k] >= 0}
    return table, match


def _cd_shares(model: PMF, ids, sample_cluster: pd.Series) -> pd.DataFrame:
    """Each sample's modelled Cd split over the PMF factors."""
    j = list(model.elements_).index("cd")
    parts = model.contributions_ * model.profiles_[:, j]  # (n, p) mg/kg of Cd per factor
    total = parts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, parts / total, np.nan)
    out = pd.DataFrame(shares.round(4), columns=[f"cd_share_{f}" for f in model.factors_])
    out.insert(0, "sample_id", np.asarray(ids).astype(str))
    out.insert(1, "cluster_id", sample_cluster.reindex(out["sample_id"]).fillna("").to_numpy())
    out["main_factor"] = np.asarray(model.factors_)[np.nan_to_num(shares, nan=-1).argmax(axis=1)]
    return out


def _cluster_shares(contributions: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    cols = [c for c in contributions if c.startswith("cd_share_")]
    inside = contributions[contributions["cluster_id"] != ""]
    mean = inside.groupby("cluster_id")[cols].mean().round(4)
    mean.columns = [f"factor_{c.removeprefix('cd_share_')}_cd_share" for c in cols]
    if len(mean):
        main = mean.idxmax(axis=1).str.removeprefix("factor_").str.removesuffix("_cd_share")
        mean["main_factor"] = main
        mean["main_factor_label"] = main.map(labels)
    return mean


def _cluster_excess(model: PMF, X: np.ndarray, ids, sample_cluster: pd.Series) -> pd.DataFrame:
    """Per cluster and element, the factor contributions raised over the outside samples."""
    cid = sample_cluster.reindex(np.asarray(ids).astype(str)).fillna("").to_numpy()
    outside = cid == ""
    if outside.all() or not outside.any():
        return pd.DataFrame(columns=list(model.elements_))
    g = pd.DataFrame(model.contributions_).groupby(cid).mean()
    raised = np.maximum(g.drop(index="").to_numpy() - g.loc[""].to_numpy(), 0.0)
    median = np.median(X[outside], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(median > 0, (raised @ model.profiles_) / median, 0.0)
    return pd.DataFrame(rel, index=g.index.drop(""), columns=list(model.elements_))
