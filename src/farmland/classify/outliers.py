"""Screening soil samples for values that are probably wrong, before classification.

A mistyped 镉 = 45 (meant 0.45) makes a class-3 parcel, and through the variogram it
reshapes the surface for the whole county. Three kinds of suspects are screened (the
thresholds are module constants, documented in docs/decisions.md):

- **global**: a value above :data:`GLOBAL_FACTOR` times the element's highest
  intervention value (any pH band), or a pH outside :data:`PH_PLAUSIBLE`;
- **spatial**: a value above :data:`SPATIAL_FACTOR` times the median of its
  :data:`NEIGHBOURS` nearest samples *and* above the element's lowest screening value
  (a local spike that is not just a clean sample among cleaner ones);
- **units**: a value about 1000 times its neighbours' median (µg/kg read as mg/kg), or
  about 1000 times smaller (g/kg read as mg/kg);
- **loo** (:func:`screen_loo`, after the variograms are fitted): a value whose
  leave-one-out standardised error z = (observed − estimate) / kriging SD, on the
  kriging scale (log for the metals), lies beyond ± ``[outliers] loo_max_z`` (4) of
  the rules profile. The z values are those of the run's cross-validation
  (:func:`farmland.geostats.quality.cross_validation_report`), computed with variograms
  fitted without the suspects of the three rules above.

**Corroborated hot spots** (:func:`corroborate`): a typo or a lab error hits one value of
a sample; real contamination rarely comes alone (smelters, mines, batteries and
irrigation water carry several metals). A high ``spatial`` or ``loo`` suspect whose
sample also holds another metal at ``[outliers] corroboration`` (3) times the median of
that metal's own nearest samples is kept in the surfaces and variograms like any value:
it stays in ``outliers.csv`` with the corroborating metal in its detail, so an analyst
can still check the sample's location, but it no longer hides the hot spot from its
neighbours (docs/decisions.md "Corroborated hot spots").

What happens to a suspect is the ``mode`` (``--outliers``):

- ``flag`` (default): reported, kept for its own sample's point class (a real hot spot
  must still make its parcel class 3), left out of the interpolated surfaces and the
  variogram fit (so one value cannot reshape the county);
- ``exclude``: the value is removed (the sample's class then comes from its other
  elements, or the sample becomes unusable, as for a missing value);
- ``keep``: reported only.

Nothing is silent: every suspect is logged and written to ``outliers.csv``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.errors import InputError, first_rows
from farmland.standards import CLASS_ELEMENTS

__all__ = ["ACTION_LABELS", "MODES", "OUTLIER_COLUMNS", "apply_outliers", "corroborate",
           "hot_spot", "screen_loo", "screen_outliers"]

log = logging.getLogger(__name__)

MODES = ("flag", "exclude", "keep")
#: a value above this many times the element's highest intervention value is suspect
GLOBAL_FACTOR = 5.0
#: plausible pH of farmland soils (the readers refuse values outside 0–14)
PH_PLAUSIBLE = (3.0, 10.0)
#: a value above this many times the median of its neighbours is a local spike
SPATIAL_FACTOR = 10.0
#: neighbours whose median a value is compared with
NEIGHBOURS = 8
#: ratio band around 1000 that suggests µg/kg (or g/kg) read as mg/kg
UNIT_BAND = (300.0, 3000.0)
#: the leave-one-out rule flags at most this share of a variable's values; more means the
#: kriging SDs are too narrow for the data (a mis-fitted variogram), not that values are bad
LOO_MAX_SHARE = 0.05
OUTLIER_COLUMNS = ["sample_id", "element", "value", "check", "detail", "fix", "action"]
#: checks a second high metal of the same sample can corroborate (a local anomaly); a value
#: beyond every intervention value, a unit mix-up or an implausible pH is never real
CORROBORATED_CHECKS = ("spatial", "loo")
#: ``action`` of a suspect by mode (``outliers.csv``)
ACTIONS = {"flag": "kept for its own sample; left out of surfaces and variograms",
           "exclude": "removed", "keep": "reported only"}
#: ``action`` of a corroborated value under ``flag`` or ``exclude`` (and how ``keep`` ends it)
KEPT_ACTION = "kept in surfaces and variograms: corroborated hot spot"
HOT_SPOT = "corroborated hot spot"
#: ``action`` of a corroborated value under ``keep`` (nothing leaves the surfaces anyway)
REPORTED_HOT_SPOT = f"{ACTIONS['keep']}: {HOT_SPOT}"
#: every ``action`` → (Chinese, English), for the report and the map
ACTION_LABELS: dict[str, tuple[str, str]] = {
    ACTIONS["flag"]: ("仅用于本样点定类，不参与插值与变异函数", ACTIONS["flag"]),
    ACTIONS["exclude"]: ("已剔除", ACTIONS["exclude"]),
    ACTIONS["keep"]: ("仅报告", ACTIONS["keep"]),
    KEPT_ACTION: ("多项同时偏高，作为真实高值点保留，参与插值与变异函数", KEPT_ACTION),
    REPORTED_HOT_SPOT: ("仅报告（多项同时偏高的高值点）", REPORTED_HOT_SPOT),
}


def screen_outliers(samples: pd.DataFrame, standard) -> pd.DataFrame:
    """Suspect values of the soil samples, one row per sample and element.

    Parameters
    ----------
    samples
        Canonical soil samples (``sample_id``, ``ph``, the class-driving metals) with
        point geometry in a metric CRS.
    standard
        The loaded standard (intervention and screening values).

    Returns
    -------
    pandas.DataFrame
        :data:`OUTLIER_COLUMNS` without ``action``; ``check`` is ``global``, ``ph_range``,
        ``spatial`` or ``units``.
    """
    rows: list[dict] = []
    ids = samples["sample_id"].astype(str).to_numpy()
    ph = pd.to_numeric(samples["ph"], errors="coerce").to_numpy(float)
    bad_ph = np.isfinite(ph) & ((ph < PH_PLAUSIBLE[0]) | (ph > PH_PLAUSIBLE[1]))
    for i in np.flatnonzero(bad_ph):
        rows.append(_row(ids[i], "ph", ph[i], "ph_range",
                         f"pH {ph[i]:g} outside the plausible {PH_PLAUSIBLE[0]:g}–"
                         f"{PH_PLAUSIBLE[1]:g} of farmland soils",
                         "check the pH cell (a decimal point lost? another column?)"))
    xy = (shapely.get_coordinates(samples.geometry.values) if "geometry" in samples
          else np.zeros((len(samples), 2)))
    for el in CLASS_ELEMENTS:
        if el not in samples:
            continue
        v = pd.to_numeric(samples[el], errors="coerce").to_numpy(float)
        units, spikes = _local_rows(ids, v, xy, el, standard)
        seen = {r["sample_id"] for r in units}
        glob = [r for r in _global_rows(ids, v, el, standard) if r["sample_id"] not in seen]
        seen |= {r["sample_id"] for r in glob}
        # one row per value, the most specific reason first: units, global, spatial
        rows += units + glob + [r for r in spikes if r["sample_id"] not in seen]
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS[:-1])


def _row(sample_id: str, element: str, value: float, rule: str, detail: str,
         fix: str) -> dict:
    return {"sample_id": sample_id, "element": element, "value": float(value), "check": rule,
            "detail": detail, "fix": fix}


#: one pH per GB 15618 band, to read an element's values in every band
_BAND_PH = np.array([5.0, 6.0, 7.0, 8.0])


def _highest_intervention(standard, element: str) -> float:
    return float(np.nanmax(standard.intervention_values(element, _BAND_PH)))


def _lowest_screening(standard, element: str) -> float:
    return float(min(np.nanmin(standard.screening_values(element, landuse, _BAND_PH))
                     for landuse in ("paddy", "dry")))


def _global_rows(ids, v, el, standard) -> list[dict]:
    limit = GLOBAL_FACTOR * _highest_intervention(standard, el)
    hit = np.isfinite(v) & (v > limit)
    return [_row(ids[i], el, v[i], "global",
                 f"{el} {v[i]:g} mg/kg is more than {GLOBAL_FACTOR:g} × its highest "
                 f"intervention value ({limit / GLOBAL_FACTOR:g})",
                 "check the lab report: a decimal point lost (45 for 0.45) or µg/kg?")
            for i in np.flatnonzero(hit)]


def _local_rows(ids, v, xy, el, standard) -> tuple[list[dict], list[dict]]:
    """(unit mix-ups, local spikes) of element ``el``."""
    pos, med = _neighbour_median(v, xy)
    if not len(pos):
        return [], []
    ratio = v[pos] / med
    floor = _lowest_screening(standard, el)
    out = []
    for j in np.flatnonzero((ratio >= UNIT_BAND[0]) & (ratio <= UNIT_BAND[1])):
        out.append(_row(ids[pos[j]], el, v[pos[j]], "units",
                        f"{el} {v[pos[j]]:g} is about {ratio[j]:.0f} × its neighbours' median "
                        f"{med[j]:g}: µg/kg read as mg/kg?",
                        "divide by 1000 if the lab reported µg/kg (name the column 镉(µg/kg))"))
    low = (ratio > 0) & (1 / ratio >= UNIT_BAND[0]) & (1 / ratio <= UNIT_BAND[1])
    for j in np.flatnonzero(low):
        out.append(_row(ids[pos[j]], el, v[pos[j]], "units",
                        f"{el} {v[pos[j]]:g} is about 1/{1 / ratio[j]:.0f} of its neighbours' "
                        f"median {med[j]:g}: g/kg read as mg/kg?",
                        "multiply by 1000 if the lab reported g/kg"))
    spikes = []
    spike = (ratio >= SPATIAL_FACTOR) & (v[pos] > floor)
    for j in np.flatnonzero(spike):
        spikes.append(_row(ids[pos[j]], el, v[pos[j]], "spatial",
                        f"{el} {v[pos[j]]:g} is {ratio[j]:.0f} × the median {med[j]:g} of its "
                        f"{NEIGHBOURS} nearest samples",
                        "check the value; if it is real, resample around it (a hot spot)"))
    return out, spikes


def _neighbour_median(v: np.ndarray, xy: np.ndarray,
                      at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the finite positive values, the median of each one's
    :data:`NEIGHBOURS` nearest other such values); empty when there are too few.
    ``at``: only these rows (those of them with a value), the same medians."""
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() <= NEIGHBOURS:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    pos = np.flatnonzero(ok)
    rows = pos if at is None else np.intersect1d(np.asarray(at, dtype=np.int64), pos)
    _, nn = cKDTree(xy[pos]).query(xy[rows], k=NEIGHBOURS + 1, workers=-1)
    return rows, np.median(v[pos][nn[:, 1:]], axis=1)   # the neighbours, not the sample


def neighbour_ratios(samples: pd.DataFrame, rows=None) -> dict[str, np.ndarray]:
    """Each class-driving metal's value over the median of its :data:`NEIGHBOURS` nearest
    samples (those with a value of that metal), by row of ``samples``; NaN without one
    (and outside ``rows``, the row positions to compute, when given: a few suspects
    among 10⁵ samples need not query them all)."""
    xy = shapely.get_coordinates(samples.geometry.values)
    out = {}
    for el in CLASS_ELEMENTS:
        if el not in samples:
            continue
        v = pd.to_numeric(samples[el], errors="coerce").to_numpy(float)
        ratio = np.full(len(v), np.nan)
        at, med = _neighbour_median(v, xy, rows)
        ratio[at] = v[at] / med
        out[el] = ratio
    return out


def corroborate(suspects: pd.DataFrame, samples: pd.DataFrame, *, factor: float,
                listed: pd.DataFrame | None = None) -> pd.DataFrame:
    """``suspects`` with a ``corroborated`` column: True for a high ``spatial`` or ``loo``
    value whose sample holds another class-driving metal at ``factor`` times the median
    of that metal's :data:`NEIGHBOURS` nearest samples or more (co-contamination: kept
    in the surfaces by :func:`apply_outliers`); the detail then names that metal.

    A metal of the same sample that is a ``global``, ``units`` or ``ph_range`` suspect, or
    an uncorroborated suspect of an earlier pass (``listed``), corroborates nothing: a row
    of values in the wrong unit must not vouch for itself. Two high spikes of one sample
    do corroborate each other (a smelter raises Cd and Pb together; two typos in one
    row are far rarer). Low values are never corroborated (leaving one out of the
    surface can only raise its neighbours' classes). ``samples`` is the frame the
    suspects were found in (point geometry, metric CRS).
    """
    out = suspects.copy()
    out["corroborated"] = False
    if out.empty or "geometry" not in samples:
        return out
    row_of = {sid: i for i, sid in reversed(list(enumerate(
        samples["sample_id"].astype(str))))}
    ids = out["sample_id"].astype(str)
    ratios = neighbour_ratios(samples, rows=sorted({row_of[i] for i in ids if i in row_of}))
    doubtful = {(sid, el) for sid, el, check in zip(ids, out["element"], out["check"],
                                                    strict=True)
                if check not in CORROBORATED_CHECKS}
    if listed is not None and len(listed):
        doubt = (listed.loc[~hot_spot(listed["action"])]
                 if "action" in listed else listed)
        doubtful |= set(zip(doubt["sample_id"].astype(str), doubt["element"], strict=True))
    for k, (sid, el, check) in enumerate(out[["sample_id", "element", "check"]].itertuples(
            index=False, name=None)):
        i = row_of.get(str(sid))
        if check not in CORROBORATED_CHECKS or el not in ratios or i is None:
            continue
        if not ratios[el][i] > 1:           # a low value (or no neighbours' median)
            continue
        others = {m: r[i] for m, r in ratios.items()
                  if m != el and (str(sid), m) not in doubtful and np.isfinite(r[i])}
        best = max(others, key=others.get, default=None)
        if best is None or others[best] < factor:
            continue
        out.iloc[k, out.columns.get_loc("corroborated")] = True
        out.iloc[k, out.columns.get_loc("detail")] += (
            f"; {best} of the same sample is {others[best]:.1f} × its neighbours' median "
            f"too (≥ {factor:g}: co-contamination, kept as a hot spot)")
    return out


def screen_loo(cross_validation: pd.DataFrame, samples: pd.DataFrame, *, max_z: float,
               listed: pd.DataFrame | None = None,
               fallbacks: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Values far from their leave-one-out kriging estimate, one row per sample and variable.

    Parameters
    ----------
    cross_validation
        The per-sample leave-one-out table of
        :func:`farmland.geostats.quality.cross_validation_report`: ``variable``,
        ``sample_id``, ``observed``, ``std_error`` and ``standardized_error`` ((estimate −
        observed) / kriging SD on the kriging scale; NaN without a kriging variance).
    samples
        The soil samples (for ``<variable>_censored``: below-detection values are not
        measurements of their own and are never suspects).
    max_z
        A value is suspect when abs(z) > ``max_z``, z = (observed − estimate) / SD.
    listed
        Suspects already found (one row per value: a value listed there is not repeated).
    fallbacks
        Variables whose kriging fell back to IDW: their SD is the IDW's leave-one-out error
        (:mod:`farmland.geostats.fallback`), and the detail says so.

    Returns
    -------
    pandas.DataFrame
        :data:`OUTLIER_COLUMNS` without ``action``, ``check`` = ``loo``.
    """
    cv = cross_validation[["variable", "sample_id", "observed", "std_error",
                           "standardized_error"]].copy()
    cv["sample_id"] = cv["sample_id"].astype(str)
    z = -pd.to_numeric(cv["standardized_error"], errors="coerce").to_numpy(float)
    hit = np.isfinite(z) & (np.abs(z) > max_z)
    hit &= ~cv["variable"].isin(_too_many(cv, z, hit, listed, max_z, fallbacks)).to_numpy()
    censored = {(str(sid), var) for var in pd.unique(cv["variable"])
                if f"{var}_censored" in samples
                for sid in samples.loc[samples[f"{var}_censored"].fillna(False).astype(bool),
                                       "sample_id"]}
    seen = set() if listed is None else set(zip(listed["sample_id"].astype(str),
                                                listed["element"], strict=True))
    first = (samples.assign(_id=samples["sample_id"].astype(str))
             .drop_duplicates("_id").set_index("_id"))
    rows = []
    for i in np.flatnonzero(hit):
        sid, var, sd = cv.iloc[i][["sample_id", "variable", "std_error"]]
        if (sid, var) in censored or (sid, var) in seen:
            continue
        obs = float(first.at[sid, var])   # the table's copy is rounded to 6 decimals
        rows.append(_row(sid, var, obs, "loo",
                         _loo_detail(sid, var, obs, sd, z[i], max_z, var in fallbacks),
                         "check the value and the sample's location; if both are right it "
                         "is a real local anomaly: resample around it"))
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS[:-1])


def _too_many(cv: pd.DataFrame, z: np.ndarray, hit: np.ndarray, listed: pd.DataFrame | None,
              max_z: float, fallbacks: frozenset[str] = frozenset()) -> list[str]:
    """Variables where the rule would flag more than :data:`LOO_MAX_SHARE` of the values
    (with those it flagged in earlier passes; at least 2): skipped, with a WARNING."""
    earlier = (pd.Series(dtype=int) if listed is None or "check" not in listed else
               listed.loc[listed["check"] == "loo", "element"].value_counts())
    skip = []
    for var, rows in cv.groupby("variable").indices.items():
        n, flagged = int(np.isfinite(z[rows]).sum()), int(hit[rows].sum())
        before = int(earlier.get(var, 0))
        if flagged and before + flagged > max(1.0, LOO_MAX_SHARE * (n + before)):
            msse = float(np.nanmean(z[rows] ** 2))
            sd, check = (("IDW error SD", f"{var}'s IDW fallback") if var in fallbacks
                         else ("kriging SD", f"{var} variogram"))
            log.warning("leave-one-out rule: %d of %d %s values lie beyond ±%g %s "
                        "(mean squared z %.2g, ideal 1): the SDs are too narrow for these "
                        "data, not the values wrong; no %s value is flagged by this rule — "
                        "check the %s in crossval.csv", flagged + before, n + before, var,
                        max_z, sd, msse, var, check)
            skip.append(var)
    return skip


def _loo_detail(sid: str, var: str, obs: float, sd: float, z: float, max_z: float,
                fallback: bool = False) -> str:
    """``TR0019 cd 0.062 mg/kg is 4.43 kriging SD below its leave-one-out estimate …``
    (for an IDW fallback: SDs of the IDW's leave-one-out error)."""
    log_scale = var != "ph"
    centre = np.exp(np.log(obs) - z * sd) if log_scale else obs - z * sd
    unit = "" if var == "ph" else " mg/kg"
    what = ("standard deviations of the IDW's leave-one-out error (no spatial structure: "
            "kriging fell back to IDW)" if fallback else "kriging standard deviations")
    return (f"{sid} {var} {obs:g}{unit} is {abs(z):.2f} {what} "
            f"{'above' if z > 0 else 'below'} its leave-one-out estimate {centre:.3g}{unit} "
            f"from the nearest other samples (z = {z:+.2f} on the "
            f"{'log' if log_scale else 'pH'} scale; suspect beyond ±{max_z:g})")


def hot_spot(actions: pd.Series) -> pd.Series:
    """Which rows of an ``outliers.csv`` ``action`` column are corroborated hot spots."""
    return actions.astype("string").str.endswith(HOT_SPOT).fillna(False).astype(bool)


def apply_outliers(samples: pd.DataFrame, suspects: pd.DataFrame,
                   mode: str = "flag") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``samples`` with the suspects handled by ``mode``, and the QA table with ``action``.

    ``flag`` marks ``<el>_suspect`` (True) so :func:`farmland.geostats.surfaces.
    interpolation_values` leaves the value out of surfaces and variograms; ``exclude``
    removes the value (NaN); ``keep`` changes nothing. Rows marked ``corroborated``
    (:func:`corroborate`) are kept as they are in every mode. The input is not modified.
    """
    if mode not in MODES:
        raise InputError("unknown outlier mode", value=mode, fix="use flag, exclude or keep")
    out = samples.copy()
    action = ACTIONS[mode]
    kept = (suspects["corroborated"].fillna(False).to_numpy(bool)
            if "corroborated" in suspects else np.zeros(len(suspects), dtype=bool))
    table = suspects.assign(action=np.where(
        kept, KEPT_ACTION if mode != "keep" else REPORTED_HOT_SPOT, action)
    )[OUTLIER_COLUMNS]
    if table.empty:
        return out, table
    doubt = table.loc[~kept]
    if len(doubt):
        log.warning("%d suspect value(s) in the soil samples (%s): %s; see outliers.csv",
                    len(doubt), mode, first_rows(doubt["sample_id"] + " " + doubt["element"]))
    if kept.any():
        log.warning("%d high value(s) kept as hot spots: another metal of the same sample is "
                    "high too (%s); check their locations in outliers.csv", int(kept.sum()),
                    first_rows(table.loc[kept, "sample_id"] + " " + table.loc[kept, "element"]))
    ids = out["sample_id"].astype(str)
    for el, group in doubt.groupby("element"):
        hit = ids.isin(set(group["sample_id"])).to_numpy()
        if mode == "flag":
            out[f"{el}_suspect"] = hit if f"{el}_suspect" not in out else (
                out[f"{el}_suspect"].fillna(False).to_numpy(bool) | hit)
        elif mode == "exclude":
            out.loc[hit, el] = np.nan
    return out, table
