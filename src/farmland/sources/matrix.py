"""The data matrix of source apportionment: concentrations, detection limits, uncertainties.

Concentrations are mg/kg dry soil, one row per soil sample and one column per metal, in
the order of :data:`METALS`. Uncertainties follow the equation-based rule of the EPA PMF
5.0 user guide (Norris et al. 2014, section 5.1.2)::

    x ≤ MDL:   u = 5/6 · MDL
    x > MDL:   u = sqrt((EF · x)² + (0.5 · MDL)²)

with MDL the method detection limit and EF the error fraction (default 0.10). A value
reported as not detected without a number (``ND``) is taken as MDL/2, a missing value as
the element's median with u = 4 × median (EPA's rule for missing data), so it pulls on
the fit no more than a very uncertain guess.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from importlib import resources
from io import StringIO
from typing import NamedTuple

import numpy as np
import pandas as pd

from farmland.errors import InputError

logger = logging.getLogger(__name__)

#: the metals source apportionment looks at, in this order when present
METALS = ("cd", "hg", "as", "pb", "cr", "cu", "ni", "zn")
#: EPA PMF's default share of a value taken as its analytical error
DEFAULT_ERROR_FRACTION = 0.10
#: a missing value's uncertainty, as a multiple of the element median (EPA PMF 5.0)
MISSING_UNCERTAINTY_FACTOR = 4.0


class SampleMatrix(NamedTuple):
    """Concentrations and uncertainties of the samples, ready for PMF.

    Unpacks as ``X, U, elements, sample_ids``.
    """

    X: np.ndarray
    """(n_samples, n_elements) concentrations, mg/kg; ND and missing values filled."""
    U: np.ndarray
    """(n_samples, n_elements) uncertainties, mg/kg, all > 0."""
    elements: tuple[str, ...]
    """Column names of ``X`` and ``U`` (lower-case element symbols)."""
    sample_ids: np.ndarray
    """Row labels: the ``sample_id`` of each row."""


def detection_limits() -> pd.DataFrame:
    """Method detection limits shipped with farmland.

    Returns
    -------
    pandas.DataFrame
        ``element, mdl_mg_kg, method, standard``, one row per metal of :data:`METALS`;
        the limits of the Chinese standard methods usually used for farmland soil (the
        laboratory's own limits are better when known: pass them as ``mdl``).
    """
    text = resources.files("farmland.sources").joinpath("detection_limits.csv").read_text(
        encoding="utf-8")
    return pd.read_csv(StringIO(text), dtype={"element": str, "mdl_mg_kg": float})


def _mdl_of(elements: Sequence[str], mdl: Mapping[str, float] | None) -> np.ndarray:
    shipped = detection_limits()
    table = dict(zip(shipped["element"], shipped["mdl_mg_kg"], strict=True))
    table.update(mdl or {})
    missing = [el for el in elements if el not in table]
    if missing:
        raise InputError(f"no detection limit for {', '.join(missing)}",
                         fix="pass mdl={'element': limit in mg/kg, ...}")
    return np.array([float(table[el]) for el in elements])


def epa_uncertainty(x: np.ndarray, mdl: np.ndarray | float,
                    error_fraction: np.ndarray | float = DEFAULT_ERROR_FRACTION) -> np.ndarray:
    """Uncertainty of concentrations by the equation-based rule of EPA PMF 5.0.

    Parameters
    ----------
    x
        Concentrations, mg/kg (any shape; no NaN).
    mdl
        Method detection limit(s), mg/kg, broadcast against ``x`` (one per column).
    error_fraction
        Relative analytical error EF, broadcast like ``mdl``.

    Returns
    -------
    numpy.ndarray
        ``5/6 · mdl`` where ``x ≤ mdl``, else ``sqrt((EF·x)² + (mdl/2)²)``; same shape
        as ``x``.
    """
    x = np.asarray(x, dtype=float)
    mdl = np.broadcast_to(np.asarray(mdl, dtype=float), x.shape)
    ef = np.broadcast_to(np.asarray(error_fraction, dtype=float), x.shape)
    return np.where(x <= mdl, 5.0 / 6.0 * mdl, np.sqrt((ef * x) ** 2 + (0.5 * mdl) ** 2))


def present_metals(samples: pd.DataFrame) -> tuple[str, ...]:
    """The metals of :data:`METALS` with at least one value or ND in ``samples``."""
    found = []
    for el in METALS:
        if el not in samples.columns:
            continue
        censored = samples.get(f"{el}_censored")
        has_nd = censored is not None and bool(censored.fillna(False).astype(bool).any())
        if samples[el].notna().any() or has_nd:
            found.append(el)
    return tuple(found)


def _check_elements(samples: pd.DataFrame, elements: Sequence[str] | None) -> tuple[str, ...]:
    if "sample_id" not in samples.columns:
        raise InputError("soil samples have no 'sample_id' column", column="sample_id",
                         fix="read them with farmland.io.read_soil_samples")
    if elements is None:
        chosen = present_metals(samples)
    else:
        chosen = tuple(str(el).lower() for el in elements)
        absent = [el for el in chosen if el not in samples.columns]
        if absent:
            raise InputError(f"no column for {', '.join(absent)} in the soil samples",
                             value=sorted(samples.columns.astype(str)),
                             fix="choose elements among the sample columns")
    if len(chosen) < 2:
        raise InputError(f"source apportionment needs at least two metals, got {list(chosen)}",
                         fix="give samples with cd, hg, as, pb, cr (and cu, ni, zn)")
    return chosen


def filled_values(samples: pd.DataFrame, elements: Sequence[str],
                  mdl: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Concentrations with ND values as MDL/2, and the mask of missing values.

    Parameters
    ----------
    samples
        Soil samples as :func:`farmland.io.read_soil_samples` returns them: a column per
        element (mg/kg) and ``<element>_censored`` (True for a below-detection result).
    elements
        Columns to take.
    mdl
        Detection limits (mg/kg) replacing the shipped ones, by element.

    Returns
    -------
    values, missing
        (n, m) float array with censored values without a number set to MDL/2 (and
        values ≤ 0 likewise), NaN where the value is missing; and the boolean mask of
        those NaN.
    """
    limits = _mdl_of(elements, mdl)
    values = samples[list(elements)].to_numpy(dtype=float, na_value=np.nan).copy()
    if np.any(values < 0):
        col = elements[int(np.nonzero((values < 0).any(axis=0))[0][0])]
        raise InputError("negative concentration", column=col,
                         fix="read the samples with farmland.io.read_soil_samples")
    for j, el in enumerate(elements):
        censored = samples.get(f"{el}_censored")
        nd = np.zeros(len(samples), bool) if censored is None else (
            censored.fillna(False).to_numpy(dtype=bool))
        fill = (nd & np.isnan(values[:, j])) | (values[:, j] <= 0)
        values[fill, j] = limits[j] / 2
    return values, np.isnan(values)


def sample_matrix(samples: pd.DataFrame, elements: Sequence[str] | None = None, *,
                  error_fraction: float | Mapping[str, float] = DEFAULT_ERROR_FRACTION,
                  mdl: Mapping[str, float] | None = None) -> SampleMatrix:
    """Concentration and uncertainty matrices of soil samples for PMF.

    Parameters
    ----------
    samples
        Soil samples as :func:`farmland.io.read_soil_samples` returns them (lower-case
        element columns in mg/kg, ``<element>_censored``, ``sample_id``); geometry is
        not used.
    elements
        Metals to use; default: those of :data:`METALS` present in ``samples``.
    error_fraction
        EF of the uncertainty rule, one value or one per element.
    mdl
        Detection limits in mg/kg replacing those of :func:`detection_limits`.

    Returns
    -------
    SampleMatrix
        ``X, U, elements, sample_ids``. A result below detection without a number is
        MDL/2 with u = 5/6·MDL; a missing value is the element's median with u = 4 ×
        median. Samples without any value of the chosen elements are left out (logged).

    Raises
    ------
    InputError
        No ``sample_id``, an element column missing, fewer than two elements, a negative
        value, no detection limit for an element.
    """
    chosen = _check_elements(samples, elements)
    values, missing = filled_values(samples, chosen, mdl)
    empty = missing.all(axis=1)
    if empty.any():
        logger.warning("%d sample(s) without any value of %s left out of the matrix (first: %s)",
                       int(empty.sum()), ", ".join(chosen),
                       ", ".join(map(str, samples["sample_id"].to_numpy()[empty][:5])))
    values, missing = values[~empty], missing[~empty]
    ids = samples["sample_id"].to_numpy()[~empty]
    if isinstance(error_fraction, Mapping):
        ef = np.array([float(error_fraction.get(el, DEFAULT_ERROR_FRACTION)) for el in chosen])
    else:
        ef = np.full(len(chosen), float(error_fraction))
    U = epa_uncertainty(np.nan_to_num(values), _mdl_of(chosen, mdl), ef)
    medians = np.nanmedian(np.where(missing, np.nan, values), axis=0)
    for j, el in enumerate(chosen):
        if missing[:, j].any():
            if np.isnan(medians[j]):
                raise InputError(f"element {el} has no value in any sample", column=el,
                                 fix="leave it out with elements=[...]")
            values[missing[:, j], j] = medians[j]
            U[missing[:, j], j] = MISSING_UNCERTAINTY_FACTOR * medians[j]
            logger.info("%s: %d missing value(s) set to the median %.4g mg/kg, u = 4 × median",
                        el, int(missing[:, j].sum()), medians[j])
    return SampleMatrix(values, U, chosen, ids)
