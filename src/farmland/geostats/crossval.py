"""Cross-validation of the interpolators (leave-one-out or k-fold).

Coordinates are (n, 2) metres in a projected CRS; values in original units (mg/kg).

A run that repeats an earlier one with a few samples changed (类别动态调整) can keep the
earlier leave-one-out kriging moments of every location no change can reach
(:class:`LooMemory`, :func:`leave_one_out_reusing`): the estimate at location ``t`` uses
the ``k`` nearest *other* locations, so when the same variogram, ``k`` and search radius
are used and no changed location (new, gone, or with another value, old or new position)
lies within the distance ``d_k(t)`` to ``t``'s ``k``-th nearest other unchanged location
(and no unchanged location ties with that ``k``-th one), ``t``'s neighbours, their values
and order (locations are sorted by coordinates) are the earlier run's, so are its moments.
Those distances come from one search of a set ``B`` holding the unchanged locations (the
locations of every variable, :class:`NearestOthers`): where no location of ``B`` outside
them nor any changed one lies within ``t``'s ``(k+1)``-th distance ``d`` in ``B`` (1e-9
relative margin), ``t``'s nearest ``k + 1`` in ``B`` and any location tied with the last
are unchanged ones, so ``d`` and the tie are as among the unchanged locations (else these
are searched among the unchanged ones).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from farmland.geostats.kriging import unique_locations

logger = logging.getLogger(__name__)

Estimator = Any  # IDW or LocalKriging (anything with fit/predict)


def _factory(estimator: Estimator | Callable[[], Estimator]) -> Callable[[], Estimator]:
    """A callable making unfitted estimators: an estimator is copied from its parameters."""
    if hasattr(estimator, "fit"):
        return lambda: type(estimator)(**estimator.get_params())
    if callable(estimator):
        return estimator
    raise TypeError(f"expected an estimator or a factory returning one, got {estimator!r}")


def _leave_one_out(make: Callable[[], Estimator], coords: np.ndarray, values: np.ndarray,
                   loo: Callable[[Estimator], dict] | None = None) -> dict:
    """One fit on all samples, then each sample estimated without its location (by ``loo``
    when given, e.g. :meth:`LooRecorder.for_variable`)."""
    est = make().fit(coords, values)
    if loo is not None:
        out = loo(est)
    elif hasattr(est, "leave_one_out"):
        out = est.leave_one_out()
    else:  # generic estimator: n refits
        pred = np.array(
            [
                make()
                .fit(np.delete(coords, i, 0), np.delete(values, i))
                .predict(coords[i : i + 1])[0]
                for i in range(len(values))
            ]
        )
        out = {"predicted": pred}
    nan = np.full(len(values), np.nan)
    return {
        "predicted": out["predicted"],
        "mean": out.get("mean", nan),
        "variance": out.get("variance", nan),
        "fold": np.arange(len(values)),
        "estimator": est,
    }


def _k_fold(
    make: Callable[[], Estimator], coords: np.ndarray, values: np.ndarray, folds: int, seed: int
) -> dict:
    """Refit (variogram included) on all folds but one; estimate the held-out fold."""
    fold = np.random.default_rng(seed).permutation(len(values)) % folds
    pred, mean, var = (np.full(len(values), np.nan) for _ in range(3))
    est = None
    for f in range(folds):
        test = fold == f
        est = make().fit(coords[~test], values[~test])
        pred[test] = est.predict(coords[test])
        with contextlib.suppress(NotImplementedError):  # IDW gives no distribution
            mean[test], var[test] = est.predict_distribution(coords[test])
    return {"predicted": pred, "mean": mean, "variance": var, "fold": fold, "estimator": est}


def cross_validate(
    estimator: Estimator | Callable[[], Estimator],
    coords: np.ndarray,
    values: np.ndarray,
    *,
    folds: int | None = None,
    seed: int = 0,
    classify: Callable[[np.ndarray], np.ndarray] | None = None,
    leave_one_out: Callable[[Estimator], dict] | None = None,
) -> dict[str, Any]:
    """Cross-validate an interpolator on the samples.

    Parameters
    ----------
    estimator
        An (unfitted or fitted) :class:`~farmland.geostats.estimators.IDW` /
        :class:`~farmland.geostats.estimators.LocalKriging` — copied from its parameters —
        or a callable returning a new unfitted estimator.
    coords
        (n, 2) sample coordinates, metres.
    values
        (n,) observed values, original units (mg/kg).
    folds
        ``None``: leave-one-out. Kriging and IDW do it in one pass: the model is
        fitted once (the variogram from all samples) and each sample is estimated
        from its k nearest *other* locations. An int ≥ 2: k-fold with a seeded
        random assignment, everything (variogram included) refitted per fold.
    seed
        Seed of the fold assignment.
    classify
        Optional callable mapping an (n,) array of values aligned with the samples
        to class codes; applied to predictions and to observations.
    leave_one_out
        Optional ``fitted estimator -> {"predicted", "mean", "variance"}`` replacing the
        estimator's own leave-one-out (:meth:`LooRecorder.for_variable`: the same values,
        reusing an earlier run's where no change reaches).

    Returns
    -------
    dict
        ``n`` (samples with a prediction), ``me`` (mean of predicted − observed),
        ``rmse`` (original units), ``mean_standardized_error`` and
        ``mean_squared_standardized_error`` (on the kriging scale — log when the
        estimator is log-kriging; NaN for IDW; ideal 0 and 1), ``class_accuracy``
        (share of samples whose class is predicted correctly; only with
        ``classify``), and ``samples``: a DataFrame with ``observed``,
        ``predicted``, ``error``, ``kriging_mean``, ``std_error`` (kriging scale),
        ``standardized_error`` and ``fold`` per sample.
    """
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float)
    make = _factory(estimator)
    if folds is None:
        res = _leave_one_out(make, coords, values, leave_one_out)
    elif int(folds) >= 2:
        res = _k_fold(make, coords, values, int(folds), seed)
    else:
        raise ValueError(f"folds must be None (leave-one-out) or an integer >= 2, got {folds!r}")
    return _metrics(res, values, classify)


def _metrics(res: dict, observed: np.ndarray, classify: Callable | None) -> dict[str, Any]:
    est = res["estimator"]
    log = bool(getattr(est, "log", False)) and hasattr(est, "variogram_")
    with np.errstate(divide="ignore", invalid="ignore"):
        obs_scale = np.log(observed) if log else observed
        sd = np.sqrt(res["variance"])
        z = np.where(sd > 0, (res["mean"] - obs_scale) / sd, np.nan)
    frame = pd.DataFrame(
        {
            "observed": observed,
            "predicted": res["predicted"],
            "error": res["predicted"] - observed,
            "kriging_mean": res["mean"],
            "std_error": sd,
            "standardized_error": z,
            "fold": res["fold"],
        }
    )
    ok = np.isfinite(frame["error"].to_numpy())
    zs = z[np.isfinite(z)]
    out: dict[str, Any] = {
        "n": int(ok.sum()),
        "me": float(np.mean(frame["error"][ok])) if ok.any() else np.nan,
        "rmse": float(np.sqrt(np.mean(frame["error"][ok] ** 2))) if ok.any() else np.nan,
        "mean_standardized_error": float(np.mean(zs)) if len(zs) else np.nan,
        "mean_squared_standardized_error": float(np.mean(zs**2)) if len(zs) else np.nan,
        "class_accuracy": np.nan,
        "samples": frame,
        "estimator": est,
    }
    if classify is not None:
        out["class_accuracy"] = _class_accuracy(classify, res["predicted"], observed, ok)
    logger.info(
        "cross-validation: n=%d ME=%.4g RMSE=%.4g MSSE=%.3g",
        out["n"],
        out["me"],
        out["rmse"],
        out["mean_squared_standardized_error"],
    )
    return out


def _class_accuracy(
    classify: Callable, predicted: np.ndarray, observed: np.ndarray, ok: np.ndarray
) -> float:
    """Share of samples (with a prediction and a class both ways) classed alike."""
    cp = pd.array(classify(predicted), dtype="Int64")
    co = pd.array(classify(observed), dtype="Int64")
    both = ok & ~np.asarray(pd.isna(cp)) & ~np.asarray(pd.isna(co))
    if not both.any():
        return np.nan
    return float(np.mean(np.asarray(cp[both]) == np.asarray(co[both])))


# --------------------------------------------------------------------------- reuse


@dataclass(frozen=True)
class LooMemory:
    """A kriging estimator's leave-one-out moments at its (merged) sample locations.

    ``key`` is the model and neighbourhood (:func:`kriging_key`); ``coords`` (n, 2) and
    ``values`` (n,) the locations and their working-scale values; ``moments`` (3, n) the
    kriging mean, variance and Lagrange multiplier of each location from the others.
    """

    key: tuple
    coords: np.ndarray
    values: np.ndarray
    moments: np.ndarray


def kriging_key(est: Estimator) -> tuple | None:
    """What the leave-one-out moments depend on besides the samples: variogram, ``k``,
    search radius, log scale; ``None`` for estimators without kriging moments."""
    model = getattr(est, "variogram_", None)
    if model is None or getattr(est, "fallback_", None) is not None or \
            not hasattr(est, "_moments"):
        return None
    radius = est.search_radius
    return (str(model.name), float(model.nugget), float(model.partial_sill),
            float(model.range_), int(est.k), None if radius is None else float(radius),
            bool(est.log))


def leave_one_out_reusing(est: Estimator, previous: LooMemory | None,
                          others: NearestOthers | None = None
                          ) -> tuple[dict[str, np.ndarray], LooMemory | None, int]:
    """Leave-one-out of a fitted kriging estimator, reusing ``previous`` where no change
    reaches (module docstring): ``(result as est.leave_one_out(), memory, recomputed)``.

    The result equals ``est.leave_one_out()`` exactly; ``recomputed`` counts the
    locations solved here. Estimators without moments (IDW, a fallback) run in full and
    give no memory. ``others`` keeps the neighbour distances for the next call (the
    other variables and passes of a run); ``None``: searched for this call only.
    """
    key = kriging_key(est)
    if key is None:
        out = est.leave_one_out()
        return out, None, len(est.coords_) if hasattr(est, "coords_") else 0
    coords, values = est.coords_, est.values_
    n = len(coords)
    moments = np.full((3, n), np.nan)
    previous = previous if previous is not None and previous.key == key else None
    old_row = _reusable(coords, values, est.k, previous, others or NearestOthers())
    todo = np.flatnonzero(old_row < 0)
    if len(todo):
        moments[:, todo] = np.asarray(est._moments(coords[todo], exclude=todo))
    keep = np.flatnonzero(old_row >= 0)
    if len(keep):
        moments[:, keep] = previous.moments[:, old_row[keep]]
    loc = est.sample_location_
    out = {"predicted": est._back(*moments)[loc], "mean": moments[0][loc],
           "variance": moments[1][loc]}
    return out, LooMemory(key, coords.copy(), values.copy(), moments), len(todo)


class NearestOthers:
    """The distances from every location of a set ``B`` to its ``k + 1``-th and
    ``k + 2``-th nearest location of ``B`` (itself first), searched once and kept while
    the unchanged locations of later calls are in ``B`` (:func:`_reusable`).

    ``B`` is the union of the locations the caller lists (``sources``) and those of the
    call; a call whose unchanged locations are not all in ``B`` or with another ``k``
    searches again."""

    def __init__(self, sources: Callable[[], list[np.ndarray]] | None = None) -> None:
        self.sources = sources or list
        self.k = -1
        self.coords = np.empty((0, 2))
        self.distances = np.empty((0, 2))

    def covering(self, locations: np.ndarray, k: int, more: list[np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, inside)``: the row of each of ``locations`` in ``B`` and the mask of
        ``B``'s rows among them; ``B`` is searched again when it lacks one of them."""
        rows = _rows_in(self.coords, locations) if self.k == k else None
        if rows is None or (rows < 0).any():
            self.coords = unique_locations(np.vstack([*self.sources(), *more, locations]))[0]
            self.k = k
            self.distances = cKDTree(self.coords).query(self.coords, k=[k + 1, k + 2],
                                                        workers=-1)[0]
            rows = _rows_in(self.coords, locations)
        inside = np.zeros(len(self.coords), dtype=bool)
        inside[rows] = True
        return rows, inside


def _reusable(coords: np.ndarray, values: np.ndarray, k: int,
              previous: LooMemory | None, others: NearestOthers) -> np.ndarray:
    """Per location: its row in ``previous`` when its moments can be kept, else -1."""
    n = len(coords)
    old_row = np.full(n, -1, dtype=np.int64)
    if previous is None:
        return old_row
    rows = _rows_in(previous.coords, coords)
    same = rows >= 0
    same[same] = previous.values[rows[same]] == values[same]
    unchanged_old = np.zeros(len(previous.coords), dtype=bool)
    unchanged_old[rows[same]] = True
    changed = np.vstack([coords[~same], previous.coords[~unchanged_old]])
    kept = coords[same]
    if len(changed) == 0:
        old_row[same] = rows[same]
        return old_row
    if len(kept) < k + 2:  # too few unchanged locations: every neighbourhood may change
        return old_row
    keep = _far_and_untied(kept, changed, k, others, [coords, previous.coords])
    target = np.flatnonzero(same)[keep]
    old_row[target] = rows[target]
    return old_row


def _far_and_untied(kept: np.ndarray, changed: np.ndarray, k: int, others: NearestOthers,
                    more: list[np.ndarray]) -> np.ndarray:
    """Per unchanged location: no changed location within its distance ``d`` to the
    ``(k+1)``-th nearest unchanged location (itself first, 1e-9 relative margin) and none
    of them tied with that one (the ``(k+2)``-th farther than ``d``). The distances are
    ``B``'s (:class:`NearestOthers`) where nothing outside the unchanged locations is
    within ``d`` in ``B`` (with the margin): there the nearest ``k + 1`` in ``B`` and any
    location tied with the last are unchanged ones, and the changed ones are farther than
    ``d``. The others are searched among the unchanged locations."""
    rows, inside = others.covering(kept, k, more)
    dist = others.distances[rows]
    outside = np.vstack([others.coords[~inside], changed])
    near = cKDTree(outside).query(kept, k=1, workers=-1)[0]
    rest = np.flatnonzero(near <= dist[:, 0] * (1 + 1e-9))
    if len(rest):
        dist[rest] = cKDTree(kept).query(kept[rest], k=[k + 1, k + 2], workers=-1)[0]
        near[rest] = cKDTree(changed).query(kept[rest], k=1, workers=-1)[0]
    return (near > dist[:, 0] * (1 + 1e-9)) & (dist[:, 1] > dist[:, 0])


def _rows_in(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Row of each ``new`` location in ``old`` (-1: absent); locations as (n, 2) arrays
    (complex numbers sort by x, then y)."""
    if not len(old):
        return np.full(len(new), -1, dtype=np.int64)
    a = old[:, 0] + 1j * old[:, 1]
    order = np.argsort(a, kind="stable")
    b = new[:, 0] + 1j * new[:, 1]
    pos = np.minimum(np.searchsorted(a[order], b), len(a) - 1)
    hit = (old[order[pos], 0] == new[:, 0]) & (old[order[pos], 1] == new[:, 1])
    return np.where(hit, order[pos], -1).astype(np.int64)


class LooRecorder:
    """Leave-one-out per variable through :func:`leave_one_out_reusing`: reuses the
    memories (by variable) of an earlier pass of this run (:meth:`next_pass`), else of the
    ``previous`` run, and keeps this run's last ones in ``memories``; ``kept`` counts the
    locations whose moments were reused per variable (last call)."""

    def __init__(self, previous: dict[str, LooMemory] | None = None) -> None:
        self.previous = dict(previous or {})
        self.memories: dict[str, LooMemory] = {}
        self.earlier: dict[str, LooMemory] = {}
        self.kept: dict[str, int] = {}
        # the neighbour distances of the kept locations: one search for every variable
        # and pass whose unchanged locations lie among all these memories' locations
        self.others = NearestOthers(lambda: [m.coords for memories in
                                             (self.previous, self.earlier)
                                             for m in memories.values()])

    def next_pass(self) -> None:
        """Let the next cross-validation of this run reuse this one's moments (the
        leave-one-out rule's next pass refits only the variables that got a suspect: the
        others keep their model and samples, so their moments are these)."""
        self.earlier = dict(self.memories)

    def _source(self, variable: str, est: Estimator) -> LooMemory | None:
        key = kriging_key(est)
        return next((m for m in (self.earlier.get(variable), self.previous.get(variable))
                     if m is not None and m.key == key), None)

    def for_variable(self, variable: str) -> Callable[[Estimator], dict]:
        def run(est: Estimator) -> dict:
            out, memory, n = leave_one_out_reusing(est, self._source(variable, est),
                                                    self.others)
            if memory is None:
                self.memories.pop(variable, None)
            else:
                self.memories[variable] = memory
            self.kept[variable] = 0 if memory is None else len(memory.values) - n
            return out
        return run
