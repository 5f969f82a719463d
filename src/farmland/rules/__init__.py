"""Class-division rule profiles (TOML), loaded and validated.

The shipped profile ``county_practice.toml`` holds the county-practice defaults of
domain.md §3. A user copies it, edits values and passes ``--rules FILE``. Unknown
keys (a typo) and out-of-range values are refused with a message naming the file
and the key; every output records the profile name and its SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from farmland.errors import StandardError

__all__ = ["DEFAULT_PROFILE", "Rules", "load_rules"]

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "county_practice"

# key -> (type, check, description of the allowed range)
_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], Any, str]]] = {
    "profile": {
        "name": (str, lambda v: bool(v.strip()), "a non-empty name"),
        "description": (str, lambda v: True, "text"),
    },
    "points": {
        "strict_override": (bool, lambda v: True, "true or false"),
        "flag_elements_raise_class": (bool, lambda v: True, "true or false"),
        "missing_ph": (str, lambda v: v in ("unusable", "strictest_band"),
                       "'unusable' or 'strictest_band'"),
        "missing_metal": (str, lambda v: v in ("unusable", "ignore"), "'unusable' or 'ignore'"),
        "rule": (str, lambda v: v in ("override", "evidence"), "'override' or 'evidence'"),
        "error_share": ((int, float), lambda v: 0 <= v <= 1, "a share 0..1 of the nugget"),
        "error_cv": ((int, float), lambda v: 0 < v <= 2, "a coefficient of variation 0 < cv <= 2"),
        "evidence_lowers": (bool, lambda v: True, "true or false"),
    },
    "interpolation": {
        "method": (str, lambda v: v in ("kriging", "idw"), "'kriging' or 'idw'"),
        "max_distance_m": ((int, float), lambda v: 0 < v <= 50_000, "0 < m <= 50000"),
        "cell_size_m": ((int, float), lambda v: 1 <= v <= 1000, "1 <= m <= 1000"),
        "point_below_cells": ((int, float), lambda v: 0 <= v <= 10_000,
                              "a number of cells 0..10000 (0: off)"),
        "neighbours": (int, lambda v: 2 <= v <= 128, "an integer 2..128"),
        "idw_power": ((int, float), lambda v: 0 < v <= 6, "0 < p <= 6"),
        "evidence_samples": (int, lambda v: 1 <= v <= 20, "an integer 1..20"),
        "probabilities": (str, lambda v: v in ("point", "parcel"), "'point' or 'parcel'"),
        "ph_uncertainty": (bool, lambda v: True, "true or false"),
        "decision": (str, lambda v: v in ("median", "risk"), "'median' or 'risk'"),
        "risk_class3": ((int, float), lambda v: 0 < v <= 1, "a probability 0 < p <= 1"),
        "risk_class2": ((int, float), lambda v: 0 < v <= 1, "a probability 0 < p <= 1"),
        "fallback_variance": (str, lambda v: v in ("loo", "none"), "'loo' or 'none'"),
        "calibration": (str, lambda v: v in ("harness", "none"), "'harness' or 'none'"),
        "nugget": (str, lambda v: v in ("fitted", "measurement"), "'fitted' or 'measurement'"),
        "nugget_ph_sd": ((int, float), lambda v: 0 < v <= 2, "a pH standard deviation 0..2"),
        "structure_test": (str, lambda v: v in ("several", "one"), "'several' or 'one'"),
        "anisotropy": (str, lambda v: v in ("none", "fitted"), "'none' or 'fitted'"),
        "trend": (str, lambda v: v in ("none", "linear"), "'none' or 'linear'"),
    },
    "crops": {
        "unit": (str, lambda v: bool(v.strip()), "'parcel' or a parcel column name"),
        "min_samples_lower": (int, lambda v: 1 <= v <= 100, "an integer 1..100"),
        "min_samples_raise": (int, lambda v: 1 <= v <= 100, "an integer 1..100"),
        "min_compliant_years": (int, lambda v: 1 <= v <= 10, "an integer 1..10"),
        "allow_2_to_1": (bool, lambda v: True, "true or false"),
        "allow_3_to_2": (bool, lambda v: True, "true or false"),
        "min_share_grade1_for_3_to_2": ((int, float), lambda v: 0 <= v <= 1, "a share 0..1"),
        "raise_class1": (bool, lambda v: True, "true or false"),
    },
    "rate": {
        "accounting": (str, lambda v: v in ("official", "parcel_verified", "measures_only"),
                       "'official', 'parcel_verified' or 'measures_only'"),
        "min_township_crop_samples": (int, lambda v: 1 <= v <= 1000, "an integer 1..1000"),
    },
    "control": {
        "min_stages": (list, lambda v: all(isinstance(x, str) and x.strip() for x in v),
                       "a list of closed-loop stages, e.g. [\"designated\", \"inspected\"]"),
        "banned_by_default": (list, lambda v: all(isinstance(x, str) and x.strip() for x in v),
                              "a list of crop codes, e.g. [\"rice\", \"leafy_veg\"]"),
        "min_allow_samples": (int, lambda v: 1 <= v <= 100, "an integer 1..100"),
    },
    "outliers": {
        "loo_max_z": ((int, float), lambda v: 2 <= v <= 1000,
                      "a number 2..1000 of kriging standard deviations (1000: rule off)"),
        "corroboration": ((int, float), lambda v: 1.5 <= v <= 1000,
                          "a number 1.5..1000 of times the neighbours' median (1000: off)"),
    },
    "variograms": {
        "reuse_max_change": ((int, float), lambda v: 0 <= v <= 1, "a share 0..1"),
        "reuse_max_shift": ((int, float), lambda v: 0 <= v <= 10, "a share of the sill 0..10"),
    },
    "qa": {
        "min_own_class_share_2": ((int, float), lambda v: 0 <= v <= 1, "a share 0..1"),
        "min_own_class_share_3": ((int, float), lambda v: 0 <= v <= 1, "a share 0..1"),
    },
}


@dataclass(frozen=True)
class Rules:
    """A validated, read-only rule profile.

    Access values as ``rules["crops"]["min_samples"]`` or ``rules.get("crops", "min_samples")``.
    """

    name: str
    source: str
    sha256: str
    sections: MappingProxyType

    def __getitem__(self, section: str) -> MappingProxyType:
        return self.sections[section]

    def get(self, section: str, key: str) -> Any:
        """Value of ``key`` in ``section``."""
        return self.sections[section][key]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """A plain, JSON-serialisable copy (for manifests)."""
        return {s: dict(v) for s, v in self.sections.items()}


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rule profile.

    Parameters
    ----------
    path
        A TOML file; ``None`` loads the shipped ``county_practice`` profile. A user
        file may leave keys out: they take the shipped defaults.

    Raises
    ------
    StandardError
        Unreadable TOML, an unknown section or key, a wrong type or an out-of-range value.
    """
    default_bytes = resources.files(__name__).joinpath(f"{DEFAULT_PROFILE}.toml").read_bytes()
    defaults = tomllib.loads(default_bytes.decode("utf-8"))
    if path is None:
        return _build(defaults, source=f"{DEFAULT_PROFILE}.toml (built in)", raw=default_bytes)
    path = Path(path)
    try:
        raw = path.read_bytes()
        user = tomllib.loads(raw.decode("utf-8-sig"))
    except FileNotFoundError:
        raise StandardError(f"{path}: rules file not found. Fix: check the path or omit --rules "
                            "to use the built-in county_practice profile") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StandardError(f"{path}: not a valid TOML rules file ({exc}). Fix: start from "
                            "a copy of the shipped county_practice.toml") from None
    crops = user.get("crops")
    if isinstance(crops, dict) and "min_samples" in crops:  # the name before issue 14
        crops["min_samples_lower"] = crops.pop("min_samples")
        log.warning("%s: [crops] min_samples is now min_samples_lower (lowering a class); "
                    "raising class 1 has its own min_samples_raise", path)
    _check(user, path)
    merged = {s: {**defaults.get(s, {}), **user.get(s, {})} for s in _SCHEMA}
    return _build(merged, source=str(path), raw=raw)


def _check(data: dict[str, Any], path: Path) -> None:
    for section, values in data.items():
        if section not in _SCHEMA:
            raise StandardError(f"{path}: unknown section [{section}]. Fix: use one of "
                                f"{', '.join(_SCHEMA)}")
        if not isinstance(values, dict):
            raise StandardError(f"{path}: [{section}] must be a table of keys")
        for key, value in values.items():
            if key not in _SCHEMA[section]:
                raise StandardError(
                    f"{path}: [{section}] unknown key '{key}'. Fix: use one of "
                    f"{', '.join(_SCHEMA[section])} (check the spelling)")
            typ, ok, allowed = _SCHEMA[section][key]
            allowed_types = typ if isinstance(typ, tuple) else (typ,)
            # bool is an int subclass: refuse true/false where a number is expected
            bad_type = not isinstance(value, allowed_types) or (
                isinstance(value, bool) and bool not in allowed_types)
            if bad_type or not ok(value):
                raise StandardError(f"{path}: [{section}] {key} = {value!r} is out of range. "
                                    f"Fix: use {allowed}")


def _build(data: dict[str, Any], *, source: str, raw: bytes) -> Rules:
    _check(data, Path(source))
    sections = MappingProxyType({s: MappingProxyType(dict(data.get(s, {}))) for s in _SCHEMA})
    name = data.get("profile", {}).get("name", DEFAULT_PROFILE)
    return Rules(name=name, source=source, sha256=hashlib.sha256(raw).hexdigest(),
                 sections=sections)
