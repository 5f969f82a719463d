"""Plan new soil sampling points (加密采样布点) and measure what they would change.

:func:`plan_sampling` proposes ``n`` points inside farmland parcels, at least
``min_spacing`` metres from each other and from existing samples, outside
exclusion polygons, chosen by

- ``uncertainty`` — greedy on the expected drop in misclassified 亩: the kriging
  variance with the planned locations added (values are not needed), the class
  decision's pre-posterior distribution, and the parcel holding the point taking the
  class of one noisy sample; updated exactly after each pick
  (:mod:`farmland.sampling.expected`, :mod:`farmland.sampling.scoring`);
- ``coverage`` — spatial-coverage infill (R spcosa): k-means over farmland with
  existing samples fixed as centres, restricted to flagged areas when flags are given;
- ``sources`` — rings around pollution sources (downstream first when known);
- ``combined`` (default) — the budget split by ``shares`` with unused budget passed on;
- ``random`` — points at random over the farmland (a baseline for the harness).

:func:`farmland.sampling.effect.plan_effect` compares distance-to-sample, uncovered
cells, expected misclassified area and expected class changes before and after a plan,
from the same calculation. Everything is metric (the parcels' CRS, e.g. EPSG:4545);
lon/lat are WGS84 (EPSG:4326) for the field team.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.spatial import cKDTree

from farmland.classes import parcel_area_mu
from farmland.crs import require_metric, same_crs, to_lonlat
from farmland.errors import InputError
from farmland.sampling.expected import EffectSettings, ExpectedEffect
from farmland.sampling.flags import FlagResult
from farmland.sampling.modes import (
    EDGE_DISTANCE_M,
    PlanState,
    candidate_points,
    candidate_spacing,
    pick_coverage,
    pick_random,
    pick_sources,
    pick_uncertainty,
    uncertainty_reason,
)
from farmland.sampling.zones import usable_samples
from farmland.vocabulary import townships_of

log = logging.getLogger(__name__)

MODES = ("combined", "coverage", "uncertainty", "sources", "random")
DEFAULT_SHARES = {"uncertainty": 0.5, "coverage": 0.35, "sources": 0.15}
PLAN_COLUMNS = ["point_id", "lon", "lat", "x", "y", "township", "parcel_id", "mode", "reason",
                "priority", "expected_benefit"]


# ====================================================================== planner
def plan_sampling(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    *,
    n: int = 60,
    mode: str = "combined",
    min_spacing: float = 250.0,
    exclusions: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    sources: gpd.GeoDataFrame | None = None,
    flags: FlagResult | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    variogram_range: float | None = None,
    variogram=None,
    rules=None,
    sample_error_cv: float | None = None,
    shares: Mapping[str, float] | None = None,
    seed: int = 0,
    candidate_spacing: float | None = None,
    target_density: float | None = None,
    edge_distance: float = EDGE_DISTANCE_M,
    return_effect: bool = False,
) -> gpd.GeoDataFrame | tuple[gpd.GeoDataFrame, PlannedEffect | None]:
    """Propose new soil sampling points for a field team.

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (docs/schema.md), metric CRS (e.g. EPSG:4545).
    samples
        Existing soil samples (usable ones are kept fixed; metric CRS).
    n
        Number of points (the budget).
    mode
        ``combined`` (default), ``coverage``, ``uncertainty``, ``sources`` or ``random``.
    min_spacing
        Minimum distance in metres between new points and to existing samples.
    exclusions
        Polygons where no point may go (reprojected to the parcels' CRS).
    sources
        Pollution sources (points; ``source_id``, ``name``, optional
        ``downstream_bearing`` in degrees clockwise from north).
    flags
        A :class:`~farmland.sampling.flags.FlagResult` or polygons: coverage points go only
        into these areas.
    variogram_range, variogram
        The :class:`~farmland.geostats.variogram.VariogramModel` of the kriging-variance
        update (the classification's fitted model of the main driving metal), or the
        range in metres of an exponential model without nugget (default 1000 m).
    rules
        Rules profile of the classification (:class:`farmland.rules.Rules` or its
        ``as_dict()``; default the shipped one): neighbours, distance limit and the
        decision rule of interpolated cells.
    sample_error_cv
        Coefficient of variation of one new sample against its parcel's mean soil (the
        lab's repeatability from duplicate samples and the parcel's own variation); the
        error used is the variogram's nugget, at least ln(1 + CV²); default 0.2.
    shares
        Budget shares of ``combined``: default uncertainty 0.5, coverage 0.35,
        sources 0.15; budget a mode cannot use passes to the next.
    seed
        Seed of the coverage k-means start and of ``random``; same seed → same plan.
    candidate_spacing
        Spacing of the candidate grid in metres (default 100 m, coarsened to keep at
        most about 250 000 candidates).
    target_density
        Samples per km² of farmland to reach; when given, n is the number missing.
    edge_distance
        Grid candidates at least this far (m) inside a parcel edge.
    return_effect
        Also return the planner's :class:`PlannedEffect` (``None`` when it cannot stand
        for a recomputation), for :func:`farmland.sampling.effect.plan_effect`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``point_id`` (P001…), ``lon``, ``lat`` (EPSG:4326, 6 decimals), ``x``, ``y``
        (parcels' CRS, 2 decimals), ``township``, ``parcel_id``, ``mode``, ``reason``
        (Chinese / English), ``priority`` (1 = most important: commit order),
        ``expected_benefit`` (expected drop in misclassified 亩 the point brings after
        the points before it), geometry
        (metric CRS). Fewer than ``n`` rows (with a warning) when the constraints
        leave no more room.
    """
    if mode not in MODES:
        raise InputError(f"unknown sampling mode {mode!r}", value=mode,
                         fix=f"use one of {', '.join(MODES)}")
    require_metric(parcels)
    parcels = parcels.loc[~(parcels.geometry.isna() | parcels.geometry.is_empty)]
    if parcels.empty:
        raise InputError("no farmland parcel with a geometry to place points in",
                         fix="pass the 'parcels' layer written by `farmland classify`")
    fixed = same_crs(usable_samples(samples), parcels, "samples")
    n = _budget(n, target_density, parcels, fixed)
    settings = EffectSettings.from_rules(rules, variogram=variogram,
                                         variogram_range=variogram_range,
                                         sample_error_cv=sample_error_cv)
    src = _source_points(sources, parcels) if sources is not None else None
    if mode == "sources" and (src is None or src.empty):
        raise InputError("mode 'sources' needs pollution sources", column="sources",
                         fix="pass sources (farmland plan --sources FILE) or choose another mode")
    state = _build_state(parcels, fixed, settings=settings, min_spacing=min_spacing,
                         exclusions=exclusions, flags=flags, spacing=candidate_spacing,
                         edge_distance=edge_distance)
    _run_modes(state, mode, n, shares, src, seed)
    before = _report_truth(state, settings.truth)
    log.info("planner: expected misclassified area %.1f → %.1f 亩 (%s truth)", before.sum(),
             state.effect.total(), state.effect.truth)
    if len(state.picks) < n:
        log.warning("only %d of %d points fit the constraints (inside farmland, %.0f m apart "
                    "and from existing samples, outside exclusions)%s", len(state.picks), n,
                    min_spacing, " or are expected to remove misclassified area"
                    if mode == "uncertainty" else "")
    plan = _plan_frame(state, parcels)
    plan.attrs["effect"] = settings
    plan.attrs["planner"] = {"mode": mode, "n": n, "min_spacing": min_spacing, "seed": seed,
                             "effect": settings.describe(), "candidate_spacing": state.spacing,
                             "edge_distance": edge_distance}
    if return_effect:
        return plan, PlannedEffect.of(state, before)
    return plan


@dataclass(frozen=True)
class PlannedEffect:
    """The planner's :class:`~farmland.sampling.expected.ExpectedEffect` with every point
    of its plan committed in priority order, and each parcel's expected misclassified
    亩 before the plan: what :func:`farmland.sampling.effect.parcel_effect` would compute
    again for the same parcels, samples and plan (it commits the same points, at the
    same evaluation points, into the same starting effect)."""

    effect: ExpectedEffect
    before: np.ndarray
    fixed_xy: np.ndarray      # existing usable samples, as the planner had them
    xy: np.ndarray            # the plan's points in priority order
    parcel: np.ndarray        # their parcel positions

    @classmethod
    def of(cls, state: PlanState, before: np.ndarray) -> PlannedEffect | None:
        """The record of a finished plan; ``None`` when a picked candidate shares its
        location with another candidate (a recomputation could commit that one)."""
        xy = np.array([p["xy"] for p in state.picks], dtype=float).reshape(-1, 2)
        if len(xy) and any(len(hit) > 1 for hit in state.cand_tree.query_ball_point(xy, 0.0)):
            return None
        return cls(state.effect, before, state.fixed_xy, xy,
                   np.array([p["parcel"] for p in state.picks], dtype=np.int64))

    def matches(self, n_parcels: int, fixed_xy: np.ndarray, xy: np.ndarray,
                parcel: np.ndarray, settings: EffectSettings) -> bool:
        """Whether this record stands for a plan of ``xy`` in parcels ``parcel`` (in
        priority order) over ``n_parcels`` parcels with samples at ``fixed_xy``."""
        return (n_parcels == len(self.effect.kind) and settings == self.effect.settings
                and np.array_equal(fixed_xy, self.fixed_xy) and np.array_equal(xy, self.xy)
                and np.array_equal(parcel, self.parcel))


def _budget(n: int, target_density: float | None, parcels: gpd.GeoDataFrame,
            fixed: gpd.GeoDataFrame) -> int:
    if target_density is None:
        if n < 0:
            raise InputError("number of points must be >= 0", value=n)
        return int(n)
    km2 = float(parcel_area_mu(parcels).sum()) / 1500
    need = max(0, math.ceil(target_density * km2) - len(fixed))
    log.info("target density %.2f/km² over %.2f km² of farmland with %d samples: %d new "
             "point(s)", target_density, km2, len(fixed), need)
    return need


def _source_points(sources: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    src = same_crs(sources, parcels, "sources")
    src = src.loc[src.geometry.notna() & ~src.geometry.is_empty]
    pts = shapely.get_coordinates(shapely.point_on_surface(src.geometry.values))
    ids = (src["source_id"].astype(str) if "source_id" in src
           else pd.Series([f"S{i + 1}" for i in range(len(src))], index=src.index))
    names = src["name"].astype(str) if "name" in src else ids
    out = pd.DataFrame({"source_id": ids.to_numpy(), "name": names.to_numpy(),
                        "x": pts[:, 0] if len(pts) else [], "y": pts[:, 1] if len(pts) else []})
    if "downstream_bearing" in src:
        out["downstream_bearing"] = pd.to_numeric(src["downstream_bearing"],
                                                  errors="coerce").to_numpy()
    return out


def _report_truth(state: PlanState, truth: str) -> np.ndarray:
    """Recompute the picks' expected benefits (and the numbers in their reasons) under
    the truth the effect is reported with, when the picks were ranked by another;
    returns each parcel's expected misclassified 亩 before the plan under it."""
    effect = state.effect
    before, drops = effect.replay(truth)
    for pick, drop in zip(state.picks, drops):
        pick["benefit"] = drop
        if pick.get("reason_kind"):
            pick["reason_zh"], pick["reason_en"] = uncertainty_reason(
                effect, pick["cand"], pick["parcel"], pick["reason_kind"], drop)
    return before


def _build_state(parcels: gpd.GeoDataFrame, fixed: gpd.GeoDataFrame, *,
                 settings: EffectSettings, min_spacing: float, exclusions, flags,
                 spacing: float | None, edge_distance: float) -> PlanState:
    geoms = parcels.geometry.values
    s = candidate_spacing(geoms, spacing)
    xy, owner = candidate_points(geoms, spacing=s, edge_distance=edge_distance)
    fixed_xy = shapely.get_coordinates(fixed.geometry.values) if len(fixed) else np.zeros((0, 2))
    available = _allowed(xy, fixed_xy, min_spacing, exclusions, parcels)
    effect = candidate_effect(parcels, fixed_xy, xy, owner, settings)
    n_pts = np.bincount(owner, minlength=len(parcels))
    log.info("planner: %d candidates at %.0f m (%d allowed), %d existing samples; %s",
             len(xy), s, int(available.sum()), len(fixed_xy), settings.describe())
    return PlanState(
        cand_xy=xy, cand_parcel=owner,
        cand_area=shapely.area(geoms)[owner] / np.maximum(n_pts[owner], 1),
        available=available, domain=_domain(xy, flags, parcels), effect=effect, spacing=s,
        min_spacing=float(min_spacing), fixed_xy=fixed_xy)


def candidate_effect(parcels: gpd.GeoDataFrame, fixed_xy: np.ndarray, xy: np.ndarray,
                     owner: np.ndarray, settings: EffectSettings) -> ExpectedEffect:
    """The expected effect evaluated at the candidates, each standing for an equal share
    of its parcel's 亩."""
    n_pts = np.bincount(owner, minlength=len(parcels))
    area_mu = parcel_area_mu(parcels).to_numpy(dtype=float)
    return ExpectedEffect(parcels, fixed_xy, xy, owner,
                          area_mu[owner] / np.maximum(n_pts[owner], 1), settings)


def _allowed(xy: np.ndarray, fixed_xy: np.ndarray, min_spacing: float, exclusions,
             parcels: gpd.GeoDataFrame) -> np.ndarray:
    """Candidates at least ``min_spacing`` from existing samples and outside exclusions."""
    ok = np.ones(len(xy), dtype=bool)
    if len(fixed_xy) and min_spacing > 0 and len(xy):
        d, _ = cKDTree(fixed_xy).query(xy, distance_upper_bound=min_spacing)
        ok &= d >= min_spacing
    if exclusions is not None and len(exclusions) and len(xy):
        ex = exclusions if isinstance(exclusions, gpd.GeoDataFrame) else gpd.GeoDataFrame(
            geometry=gpd.GeoSeries(exclusions))
        ex = same_crs(ex, parcels, "exclusions")
        hit, _ = shapely.STRtree(ex.geometry.values).query(shapely.points(xy),
                                                           predicate="intersects")
        ok[hit] = False
    return ok


def _domain(xy: np.ndarray, flags, parcels: gpd.GeoDataFrame) -> np.ndarray:
    """Coverage domain: candidates inside flagged areas, or all when none are given."""
    if flags is None or not len(xy):
        return np.ones(len(xy), dtype=bool)
    if isinstance(flags, FlagResult):
        polys = flags.flagged_area(parcels)
    else:
        frame = flags if isinstance(flags, gpd.GeoDataFrame) else gpd.GeoDataFrame(
            geometry=gpd.GeoSeries(flags))
        polys = same_crs(frame, parcels, "flags").geometry.values
    dom = np.zeros(len(xy), dtype=bool)
    if len(polys):
        hit, _ = shapely.STRtree(polys).query(shapely.points(xy), predicate="intersects")
        dom[hit] = True
    if not dom.any():
        log.info("no candidate inside the flagged areas: coverage spreads over all farmland")
        dom[:] = True
    return dom


def _run_modes(state: PlanState, mode: str, n: int, shares: Mapping[str, float] | None,
               sources: pd.DataFrame | None, seed: int) -> None:
    if mode == "uncertainty":
        pick_uncertainty(state, n)
    elif mode == "random":
        pick_random(state, n, seed=seed)
    elif mode == "coverage":
        pick_coverage(state, n, seed=seed)
    elif mode == "sources":
        pick_sources(state, n, sources)
    else:
        has_sources = sources is not None and not sources.empty
        budget = _split(n, shares, has_sources=has_sources)
        pick_uncertainty(state, budget["uncertainty"])
        state.forget_scores()   # rebuilt if the leftover pass needs them
        if has_sources:
            pick_sources(state, budget["sources"], sources)
        pick_coverage(state, n - len(state.picks), seed=seed)
        # budget a mode could not use passes on: uncertainty, then sources, then coverage
        # of all farmland (the flagged areas may be full, and uncertainty stops where no
        # point is expected to remove misclassified area)
        pick_uncertainty(state, n - len(state.picks))
        if has_sources:
            pick_sources(state, n - len(state.picks), sources)
        if len(state.picks) < n and not state.domain.all():
            state.domain[:] = True
            pick_coverage(state, n - len(state.picks), seed=seed)


def _split(n: int, shares: Mapping[str, float] | None, *, has_sources: bool) -> dict[str, int]:
    """Integer budgets per mode (largest remainder); the sources share moves to the
    others in proportion when there are no sources."""
    s = dict(DEFAULT_SHARES if shares is None else shares)
    unknown = set(s) - set(DEFAULT_SHARES)
    if unknown or any(v < 0 for v in s.values()) or sum(s.values()) <= 0:
        raise InputError("sampling shares must be non-negative weights of uncertainty, "
                         "coverage and sources", value=dict(s),
                         fix="e.g. {'uncertainty': 0.5, 'coverage': 0.35, 'sources': 0.15}")
    s = {k: float(s.get(k, 0.0)) for k in DEFAULT_SHARES}
    if not has_sources:
        s["sources"] = 0.0
    total = sum(s.values()) or 1.0
    raw = {k: n * v / total for k, v in s.items()}
    out = {k: math.floor(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (out[k] - raw[k], list(raw).index(k)))[
            :n - sum(out.values())]:
        out[k] += 1
    return out


def _plan_frame(state: PlanState, parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    picks = state.picks
    xy = np.array([p["xy"] for p in picks]).reshape(-1, 2)
    to_wgs = to_lonlat(pyproj.CRS.from_user_input(parcels.crs))
    lon, lat = to_wgs.transform(xy[:, 0], xy[:, 1]) if len(xy) else ([], [])
    pos = np.array([p["parcel"] for p in picks], dtype=np.int64)
    frame = pd.DataFrame({
        "point_id": [f"P{i:03d}" for i in range(1, len(picks) + 1)],
        "lon": np.round(np.asarray(lon, dtype=float), 6),
        "lat": np.round(np.asarray(lat, dtype=float), 6),
        "x": np.round(xy[:, 0], 2), "y": np.round(xy[:, 1], 2),
        "township": townships_of(parcels).to_numpy()[pos],
        "parcel_id": parcels["parcel_id"].astype(str).to_numpy()[pos],
        "mode": [p["mode"] for p in picks],
        "reason": [f"{p['reason_zh']} / {p['reason_en']}" for p in picks],
        "priority": np.arange(1, len(picks) + 1, dtype=np.int64),
        "expected_benefit": np.round([p["benefit"] for p in picks], 4) + 0.0,
    }, columns=PLAN_COLUMNS)
    frame["expected_benefit"] = frame["expected_benefit"].astype(float)
    return gpd.GeoDataFrame(frame, geometry=shapely.points(xy) if len(xy) else [],
                            crs=parcels.crs)
