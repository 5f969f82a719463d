"""The variogram refit rule: reuse an earlier run's variograms when the samples barely
changed (issue 15 item 2, issue 19 item 2).

Every classification used to fit its variograms anew. A few added samples then move
every variogram a little — on the demo county by no more than refitting the same samples
with another random pair subsample does — and through the kriging variances that move
reshuffles near-threshold parcels county-wide, far from any new sample. So a run of the
same county job (same parcels, same rules profile) in a workspace takes the variograms of
its previous run, variable by variable, when

- the values added, removed or changed since the run that *fitted* the variogram (not
  the run that last reused it: small changes cannot add up unseen) are at most
  ``[variograms] reuse_max_change`` (10 %) of the values it was fitted on, and
- a refit on the new samples moves the variogram curve by at most
  ``[variograms] reuse_max_shift`` (20 %) of its sill (:func:`variogram_shift`): more is
  not noise, the new samples show a structure the old fit did not see.

Otherwise that variable is refitted. A value is a (sample id, x, y, value) of a usable
sample; suspect flags do not count, they follow from the values.

Modes (``farmland classify --variograms``): ``auto`` applies the rule, ``refit`` fits
every variogram, ``reuse`` takes the previous run's models as they are (an error when
there is none). The previous run is ``--since RUN``, else the latest run in the workspace
with the same parcels and rules (SHA-256 of each in the manifest) and a fitted variogram,
older than any run already recorded for this output folder (a rerun never reuses itself).
The choice is logged and recorded in the manifest under ``variograms``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from farmland.errors import InputError
from farmland.geostats.surfaces import (
    VARIABLES,
    SurfaceModels,
    fit_surface_models,
    interpolation_inputs,
)
from farmland.geostats.variogram import VariogramModel, default_max_lag, variogram_shift
from farmland.io import read_cache
from farmland.rules import Rules
from farmland.runs.folder import classification_path, fitted_models, output_folder
from farmland.runs.workspace import Workspace

__all__ = ["MODES", "choose_variograms", "previous_models", "previous_run"]

log = logging.getLogger(__name__)

MODES = ("auto", "refit", "reuse")


def choose_variograms(usable: pd.DataFrame, rules: Rules, method: str, *, mode: str = "auto",
                      workspace: str | Path | None = None, since: str | None = None,
                      parcels_sha256: str = "", rules_sha256: str = "",
                      output: str | Path | None = None) -> tuple[SurfaceModels, dict[str, Any]]:
    """The run's surface models, fitted or reused by the refit rule, and its manifest record.

    Parameters
    ----------
    usable
        Usable classified soil samples of this run (metric CRS), as given to
        :func:`~farmland.geostats.surfaces.fit_surface_models`.
    rules, method
        Rules profile and ``"kriging"`` / ``"idw"``.
    mode
        ``"auto"``, ``"refit"`` or ``"reuse"``.
    workspace, since
        The run history and an explicit previous run id (``None``: found automatically).
    parcels_sha256, rules_sha256
        This run's parcel file and rules profile, to find a previous run of the same job.
    output
        This run's output folder (a run already recorded for it is not a previous run).

    Returns
    -------
    surfaces, record
        ``record`` has ``mode``, ``previous_run``, ``summary`` and per variable
        ``action`` (``fitted``/``reused``), ``fitted_in`` (run id, ``None``: this run) and,
        against the previous run, ``n_fitted``, ``added``, ``removed``, ``change``,
        ``shift`` and the ``reason``.
    """
    _check_mode(mode, workspace, since, method)
    prev = None
    if workspace is not None and method == "kriging" and mode != "refit":
        prev = previous_run(workspace, since=since, parcels_sha256=parcels_sha256,
                            rules_sha256=rules_sha256, output=output)
    if prev is None:
        if mode == "reuse":
            raise InputError("--variograms reuse: no earlier run of these parcels and rules "
                             "with fitted variograms", file=workspace,
                             fix="name one with --since RUN, or use --variograms auto")
        surfaces = fit_surface_models(usable, rules, method)
        why = ("IDW: no variograms" if method != "kriging" else
               "refit asked for" if mode == "refit" else
               "no workspace" if workspace is None else
               "no earlier run of these parcels and rules in the workspace")
        return surfaces, _record(mode, None, {v: {"action": "fitted", "fitted_in": None}
                                              for v in surfaces.models}, f"fitted ({why})")
    return _against(prev, usable, rules, method, mode=mode, workspace=workspace)


def _against(prev: tuple[str, dict[str, Any]], usable: pd.DataFrame, rules: Rules, method: str,
             *, mode: str, workspace) -> tuple[SurfaceModels, dict[str, Any]]:
    """The models and record when there is a previous run: ``reuse`` takes its models,
    ``auto`` fits every variable and keeps the previous model where the rule holds."""
    run_id, manifest = prev
    old = previous_models(manifest)
    recorded = (manifest.get("variograms") or {}).get("variables") or {}
    fitted_in = {v: recorded.get(v, {}).get("fitted_in") or run_id for v in old}
    changes = _changes(usable, workspace, fitted_in)
    old_variances = previous_fallback_variances(manifest)
    if mode == "reuse":
        surfaces = fit_surface_models(usable, rules, method, given=old,
                                      given_variances=old_variances)
        decided = {v: ("reused", "asked for (--variograms reuse)", None) for v in old}
    else:
        # the trial refit keeps an earlier model's anisotropy: the shift is measured in its
        # kriging space; a variable the rule refits searches its anisotropy again below
        spaces = {v: (m.ratio, m.azimuth) for v, m in old.items()
                  if isinstance(m, VariogramModel)}
        surfaces = fit_surface_models(usable, rules, method, spaces=spaces)
        max_lag = default_max_lag(interpolation_inputs(usable)[0])
        decided = {v: _decide(old.get(v), model, changes.get(v), rules, max_lag)
                   for v, model in surfaces.models.items()}
        refit = {v for v in surfaces.models if decided[v][0] != "reused" and v in spaces}
        if refit and rules.get("interpolation", "anisotropy") == "fitted":
            searched = fit_surface_models(
                usable, rules, method, given={v: m for v, m in surfaces.models.items()
                                              if v not in refit},
                given_variances=surfaces.variances)
            surfaces = replace(surfaces, models=searched.models, variances=searched.variances)
        reused = {v for v in surfaces.models if decided[v][0] == "reused"}
        surfaces = replace(
            surfaces, models={v: old[v] if v in reused else m for v, m in surfaces.models.items()},
            # a reused fallback keeps its error variance with it (as a variogram its numbers)
            variances={**surfaces.variances, **{v: old_variances[v] for v in reused
                                                if v in old_variances}})
    return surfaces, _finish(mode, run_id, surfaces, fitted_in, changes, decided)


def _check_mode(mode: str, workspace, since, method: str) -> None:
    if mode not in MODES:
        raise InputError("unknown variogram mode", value=mode, fix="use auto, refit or reuse")
    if (since or mode == "reuse") and workspace is None:
        raise InputError(f"{'--since' if since else '--variograms reuse'} needs the "
                         "workspace that holds the earlier run", fix="add --workspace FILE.gpkg")
    if mode == "reuse" and method != "kriging":
        raise InputError("--variograms reuse needs kriging (IDW has no variograms)",
                         value=method, fix="use --interpolator kriging or leave out "
                                           "--variograms")


def previous_run(workspace: str | Path, *, since: str | None = None, parcels_sha256: str = "",
                 rules_sha256: str = "", output: str | Path | None = None
                 ) -> tuple[str, dict[str, Any]] | None:
    """``(run id, manifest)`` of the run whose variograms this run may reuse, or ``None``.

    ``since`` names it (an unknown id is an :class:`InputError` listing the known ones);
    otherwise the latest run with the same parcels and rules that recorded a variogram,
    older than the run already recorded for ``output``.
    """
    ws = Workspace(workspace)
    runs = ws.runs()
    if since:
        hit = runs.loc[runs["run_id"] == str(since)]
        if hit.empty:
            raise InputError(f"no run {since!r} in the workspace", file=workspace, value=since,
                             fix=f"use one of: {', '.join(runs['run_id']) or 'none yet'}")
        manifest = json.loads(hit["manifest"].iloc[0])
        if not _same_job(manifest, parcels_sha256, rules_sha256):
            log.warning("--since %s: that run classified other parcels or used other rules; "
                        "its variograms are taken as asked", since)
        return str(since), manifest
    current = ws.run_of_output(output) if output is not None else None
    for row in runs.iloc[::-1].itertuples(index=False):
        if current is not None and _number(row.run_id) >= _number(current):
            continue
        manifest = json.loads(row.manifest)
        if _same_job(manifest, parcels_sha256, rules_sha256) and previous_models(manifest):
            return str(row.run_id), manifest
    return None


def _number(run_id: str) -> int:
    return int(str(run_id)[1:])


def _same_job(manifest: dict[str, Any], parcels_sha256: str, rules_sha256: str) -> bool:
    parcels = (manifest.get("inputs") or {}).get("parcels") or [{}]
    return (parcels[0].get("sha256") == parcels_sha256
            and (manifest.get("rules") or {}).get("sha256") == rules_sha256)


def previous_fallback_variances(manifest: dict[str, Any]) -> dict[str, float]:
    """The error variances of a run's IDW fallbacks (manifest ``geostatistics.models``
    ``fallback_variance``; runs written before it was recorded have none)."""
    return {v: float(info["fallback_variance"]) for v, info in fitted_models(manifest).items()
            if info.get("fallback") and info.get("fallback_variance") is not None}


def previous_models(manifest: dict[str, Any]) -> dict[str, VariogramModel | str]:
    """The models a run's surfaces used (its manifest's ``geostatistics.models``): a
    :class:`VariogramModel`, or the reason text of an IDW fallback; IDW runs have none."""
    out: dict[str, VariogramModel | str] = {}
    for variable, info in fitted_models(manifest).items():
        if info.get("fallback"):
            out[variable] = str(info["fallback"])
        elif info.get("model"):
            out[variable] = VariogramModel.from_summary(info)
    return out


def _changes(usable: pd.DataFrame, workspace,
             fitted_in: dict[str, str]) -> dict[str, dict[str, Any] | None]:
    """Per variable (``fitted_in``: variable -> the run that fitted its variogram): the
    number of values it was fitted on, the values added and removed since, and their
    share; ``None`` when that run's samples cannot be read."""
    layers: dict[str, tuple[pd.DataFrame, _SampleKeys] | None] = {}
    out: dict[str, dict[str, Any] | None] = {}
    located = _SampleKeys.of(usable)
    for variable, source in fitted_in.items():
        if source not in layers:
            old = _samples_layer(workspace, source)
            layers[source] = None if old is None else (old, _SampleKeys.of(old))
        if layers[source] is None or variable not in layers[source][0]:
            out[variable] = None
            continue
        before = _value_keys(*layers[source], variable)
        now = _value_keys(usable, located, variable)
        both = len(now.merge(before, how="inner", on=list(now.columns)))
        added, removed = len(now) - both, len(before) - both
        out[variable] = {"n_fitted": len(before), "added": added, "removed": removed,
                         "change": round((added + removed) / max(len(before), 1), 6)}
    return out


def _samples_layer(workspace, run_id: str) -> pd.DataFrame | None:
    """The ``samples`` layer of a run's classification (``None``: folder or file gone)."""
    folder = output_folder(run_id, workspace)
    path = None if folder is None else classification_path(folder)
    if path is None or not path.is_file():
        log.warning("the samples of %s are not at %s: the change since its variograms "
                    "cannot be measured", run_id, path or "(no output folder recorded)")
        return None
    return read_cache.read_dataframe(path, layer="samples")  # also the incremental run's


@dataclass(frozen=True)
class _SampleKeys:
    """Ids (text), positions (rounded to 0.01 m) and usability of a samples frame, taken
    once for the values of all its variables."""

    ids: np.ndarray
    xy: np.ndarray
    usable: np.ndarray

    @classmethod
    def of(cls, samples: pd.DataFrame) -> _SampleKeys:
        return cls(samples["sample_id"].astype(str).to_numpy(),
                   np.round(shapely.get_coordinates(samples.geometry.values), 2),
                   samples["usable"].astype(bool).to_numpy())


def _value_keys(samples: pd.DataFrame, located: _SampleKeys, variable: str) -> pd.DataFrame:
    """The distinct (sample id, x, y, value) of the usable samples with a value of
    ``variable`` (a set of values, as a table); ``located``: :meth:`_SampleKeys.of` samples."""
    values = pd.to_numeric(samples[variable], errors="coerce").to_numpy(float)
    ok = located.usable & np.isfinite(values)
    if variable != "ph":
        ok &= values > 0
    return pd.DataFrame({"sample_id": located.ids[ok], "x": located.xy[ok, 0],
                         "y": located.xy[ok, 1], "value": values[ok]}
                        ).drop_duplicates(ignore_index=True)


def _decide(old, new, change: dict[str, Any] | None, rules: Rules,
            max_lag: float) -> tuple[str, str, float | None]:
    """``("reused" | "fitted", reason, shift)`` for one variable under ``auto``."""
    if old is None:
        return "fitted", "no variogram in the earlier run", None
    if change is None:
        return "fitted", "the samples it was fitted on cannot be read", None
    limit = rules.get("variograms", "reuse_max_change")
    counts = f"+{change['added']} −{change['removed']} values ({_pct(change['change'])})"
    if change["change"] > limit:
        return "fitted", f"{counts} > {_pct(limit, 0)}", None
    shift, most = variogram_shift(old, new, max_lag), rules.get("variograms", "reuse_max_shift")
    if not np.isfinite(shift):
        return "fitted", "a refit changes between kriging and the IDW fallback", None
    if shift > most:
        return "fitted", (f"{counts}, but a refit moves the variogram by {_pct(shift, 0)} "
                          f"of its sill > {_pct(most, 0)}"), round(shift, 6)
    return "reused", f"{counts}; a refit would move it by {_pct(shift, 0)} of its sill", \
        round(shift, 6)


def _pct(share: float, decimals: int = 1) -> str:
    return f"{100 * share:.{decimals}f} %"


def _finish(mode, run_id, surfaces, fitted_in, changes, decided) -> dict[str, Any]:
    """Log the choice; the manifest record."""
    variables = {}
    for v in surfaces.models:
        action, reason, shift = decided.get(v, ("fitted", "no variogram in the earlier run",
                                                None))
        variables[v] = {"action": action,
                        "fitted_in": fitted_in.get(v) if action == "reused" else None,
                        **(changes.get(v) or {}), "shift": shift, "reason": reason}
    reused = [v for v, d in variables.items() if d["action"] == "reused"]
    fitted = [v for v, d in variables.items() if d["action"] == "fitted"]
    parts = []
    if reused:
        worst = max(reused, key=lambda v: variables[v].get("change") or 0)
        w = variables[worst]
        counts = (f": +{w['added']} −{w['removed']} samples ({_pct(w['change'])})"
                  if "added" in w else "")
        origins = sorted({variables[v]["fitted_in"] for v in reused} - {run_id})
        fitted_there = f" (fitted in {', '.join(origins)})" if origins else ""
        parts.append(f"variograms reused from {run_id}{fitted_there} for {', '.join(reused)}"
                     f"{counts}")
    if fitted:
        parts.append("refitted " + "; ".join(f"{v} ({variables[v]['reason']})" for v in fitted))
    summary = "; ".join(parts)
    log.info("%s", summary)
    return _record(mode, run_id, variables, summary)


def _record(mode: str, run_id: str | None, variables: dict, summary: str) -> dict[str, Any]:
    return {"mode": mode, "previous_run": run_id, "summary": summary,
            "variables": {v: variables[v] for v in VARIABLES if v in variables}}
