"""Column and value aliases for :mod:`farmland.io.readers` (the tables live in ``aliases.toml``).

A user's column is matched to a canonical column of ``docs/schema.md`` after
normalisation (:func:`normalise_name`): NFKC (full-width → ASCII), lower case, a
trailing bracketed part dropped, spaces and ``_ - . / ·`` dropped and a trailing unit
token dropped, so ``镉(mg/kg)``, ``Cd_mgkg``, ``CD`` and ``cd`` all mean ``cd``.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from farmland.errors import InputError

_TRAILING_BRACKET = re.compile(r"\s*[(\[【][^()\[\]【】]*[)\]】]\s*$")
_SEPARATORS = re.compile(r"[\s_\-./·•−⁻^*]+")


@functools.cache
def aliases() -> dict[str, Any]:
    """The parsed ``aliases.toml`` shipped with farmland (cached)."""
    text = resources.files("farmland.io").joinpath("aliases.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _nfkc_lower(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


@functools.cache
def _unit_tokens() -> tuple[tuple[str, float], ...]:
    units = {_SEPARATORS.sub("", _nfkc_lower(k)): float(v) for k, v in aliases()["units"].items()}
    return tuple(sorted(units.items(), key=lambda kv: -len(kv[0])))


def normalise_name(name: object) -> str:
    """Normalised form of a column name used for alias matching.

    Examples
    --------
    >>> normalise_name("镉(mg/kg)"), normalise_name("Cd_mgkg"), normalise_name(" pH值 ")
    ('镉', 'cd', 'ph值')
    >>> normalise_name("苯并[a]芘（μg/kg）")
    '苯并[a]芘'
    """
    text = _nfkc_lower(name)
    while True:
        stripped = _TRAILING_BRACKET.sub("", text)
        if stripped == text or not stripped:
            break
        text = stripped
    text = _SEPARATORS.sub("", text)
    for token, _ in _unit_tokens():
        if text.endswith(token) and len(text) > len(token):
            text = text[: -len(token)]
            break
    return text


def unit_factor(*labels: object) -> tuple[float, str | None]:
    """Factor to mg/kg from a unit written in a column name (or a units row).

    Returns
    -------
    (float, str | None)
        ``(0.001, "μgkg")`` for ``镉(µg/kg)``; ``(1.0, None)`` when no unit is written.
    """
    for label in labels:
        if label is None:
            continue
        compact = _SEPARATORS.sub("", _nfkc_lower(label))
        for token, factor in _unit_tokens():
            if token in compact:
                return factor, token
    return 1.0, None


def unit_text(token: str) -> str:
    """A unit token of :func:`unit_factor` as written for people: ``μgkg`` → ``μg/kg``."""
    return re.sub(r"^(mg|μg|ug|ng)(kg|g)1?$", r"\1/\2", token)


def normalise_value(value: object) -> str:
    """Normalised form of a cell used for value vocabularies (crop, measure …)."""
    return _SEPARATORS.sub("", _nfkc_lower(value))


@functools.cache
def value_lookup(vocabulary: str) -> dict[str, str]:
    """Normalised user value → canonical value for ``[values.<vocabulary>]``."""
    table = aliases()["values"][vocabulary]
    lookup: dict[str, str] = {}
    for canonical, words in table.items():
        for word in [canonical, *words]:
            lookup.setdefault(normalise_value(word), canonical)
    return lookup


@functools.cache
def token_set(vocabulary: str) -> frozenset[str]:
    """Normalised tokens of ``[values.<vocabulary>].tokens`` (missing, not_detected)."""
    return frozenset(_nfkc_lower(t) for t in aliases()["values"][vocabulary]["tokens"])


@dataclass(frozen=True)
class ColumnMatch:
    """Where each canonical column comes from in a user's table."""

    source: dict[str, str]  # canonical → user column
    accepted: dict[str, list[str]]  # canonical → accepted names (for messages)
    #: canonical → the full alias, where the user column is that alias cut to a shapefile's
    #: 10-byte field name (``图斑地类面`` for ``图斑地类面积``), for the log
    truncated: dict[str, str] = field(default_factory=dict)


def kind_aliases(kind: str, *, coordinates: bool = False) -> dict[str, list[str]]:
    """Canonical column → accepted names (canonical name first) for an input kind."""
    table = dict(aliases()["columns"][kind])
    if coordinates:
        table.update(aliases()["columns"]["coordinates"])
    explicit = set(aliases().get("explicit_only", ()))
    return {canonical: list(dict.fromkeys(
        ([] if f"{kind}.{canonical}" in explicit else [canonical.lstrip("_")]) + list(names)))
        for canonical, names in table.items()}


#: bytes of a shapefile (DBF) field name; longer names are cut by the writer
DBF_NAME_BYTES = 10


def dbf_truncations(name: str) -> set[str]:
    """The forms ``name`` takes when a shapefile writer cuts it to 10 bytes: the longest
    prefix whose GBK encoding fits (``图斑地类面积`` → ``图斑地类面``) and the longest whose
    UTF-8 encoding fits (``图斑地``). Empty when the name fits as it is."""
    out = set()
    for encoding in ("gbk", "utf-8"):
        try:
            size = len(name.encode(encoding))
        except UnicodeEncodeError:
            continue
        if size <= DBF_NAME_BYTES:
            continue
        cut = name
        while cut and len(cut.encode(encoding)) > DBF_NAME_BYTES:
            cut = cut[:-1]
        if cut:
            out.add(cut)
    return out


def truncated_aliases(accepted: Mapping[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """Canonical → ``[(normalised cut form, full alias)]`` of the accepted names cut to a
    shapefile's 10 bytes. A cut form that is (or normalises like) an accepted name of
    another column, or the cut form of another column's name, is left out: it would be
    ambiguous (``坐落单`` is both ``坐落单位名称`` and ``坐落单位代码`` cut as UTF-8)."""
    exact: dict[str, set[str]] = {}
    cuts: dict[str, set[str]] = {}
    forms: dict[str, list[tuple[str, str]]] = {}
    for canonical, names in accepted.items():
        for name in names:
            exact.setdefault(normalise_name(name), set()).add(canonical)
            for cut in sorted(dbf_truncations(name)):
                key = normalise_name(cut)
                if not key or key != _SEPARATORS.sub("", _nfkc_lower(cut)):
                    continue  # "苯并[a]芘" cut to "苯并[a]" would read as "苯并": too loose
                cuts.setdefault(key, set()).add(canonical)
                forms.setdefault(canonical, []).append((key, name))
    out: dict[str, list[tuple[str, str]]] = {}
    for canonical, pairs in forms.items():
        for key, name in pairs:
            owners = cuts[key] | exact.get(key, set())
            if owners == {canonical} and key not in {k for k, _ in out.get(canonical, [])}:
                out.setdefault(canonical, []).append((key, name))
    return out


def canonical_names() -> frozenset[str]:
    """Every canonical column name a mapping file may target (helpers without ``_``)."""
    names = set()
    for table in aliases()["columns"].values():
        names.update(k.lstrip("_") for k in table)
    return frozenset(names)


def match_columns(columns: Iterable[object], kind: str, *, mapping: Mapping[str, str] | None,
                  coordinates: bool = False, shapefile: bool = False) -> ColumnMatch:
    """Match a table's columns to the canonical columns of ``kind``.

    Parameters
    ----------
    columns
        The user's column names.
    kind
        ``parcels``, ``soil``, ``crops``, ``measures``, ``sources`` or ``townships``.
    mapping
        User mapping ``{their_name: canonical}``; it wins over the aliases. Entries
        whose column is absent or whose target belongs to another kind are ignored.
    coordinates
        Also match the coordinate columns (x, y, lon, lat).
    shapefile
        The columns come from a shapefile's DBF, whose field names are cut to 10 bytes:
        a column still missing is then also matched by its names cut like that
        (:func:`truncated_aliases`; ``图斑地类面`` is ``图斑地类面积``).
    """
    accepted = kind_aliases(kind, coordinates=coordinates)
    by_helper = {k.lstrip("_"): k for k in accepted}
    columns = [c for c in columns if str(c) != "geometry"]
    source: dict[str, str] = {}
    for theirs, canonical in (mapping or {}).items():
        if theirs in columns and canonical in by_helper:
            source[by_helper[canonical]] = theirs
    used = set(source.values())
    normalised: dict[str, str] = {}
    for col in columns:
        normalised.setdefault(normalise_name(col), col)
    for canonical, names in accepted.items():
        if canonical in source:
            continue
        for name in names:
            col = normalised.get(normalise_name(name))
            if col is not None and col not in used:
                source[canonical] = col
                used.add(col)
                break
    truncated: dict[str, str] = {}
    for canonical, pairs in (_truncated_for(kind, coordinates) if shapefile else {}).items():
        if canonical in source:
            continue
        for key, name in pairs:
            col = normalised.get(key)
            if col is not None and col not in used:
                source[canonical], truncated[canonical] = col, name
                used.add(col)
                break
    return ColumnMatch(source=source, accepted=accepted, truncated=truncated)


@functools.cache
def _truncated_for(kind: str, coordinates: bool) -> dict[str, list[tuple[str, str]]]:
    return truncated_aliases(kind_aliases(kind, coordinates=coordinates))


def read_mapping(path: str | Path) -> dict[str, str]:
    """Read a user column-mapping file.

    Parameters
    ----------
    path
        TOML or JSON file of ``their_name = "canonical"`` pairs (a top-level
        ``[columns]`` table / ``"columns"`` object is also accepted). One file may
        serve every input: entries for columns a file lacks are ignored.

    Returns
    -------
    dict[str, str]
        ``{their_name: canonical}``.

    Raises
    ------
    InputError
        If the file cannot be parsed, a value is not text, or a target is no
        canonical column (the message lists the accepted names).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if path.suffix.lower() == ".json" else _loads_toml(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the mapping file ({exc})", file=path,
                         fix='write TOML lines like "样点号" = "sample_id", or a JSON '
                             'object') from None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "measure_types"}
    if isinstance(data, dict) and isinstance(data.get("columns"), dict):
        data = data["columns"]
    if not isinstance(data, dict):
        raise InputError("a mapping file must hold name → canonical pairs", file=path)
    known = canonical_names()
    for theirs, canonical in data.items():
        if not isinstance(canonical, str) or canonical not in known:
            raise InputError("unknown canonical column in mapping", file=path, column=theirs,
                             value=canonical, fix=f"use one of: {', '.join(sorted(known))}")
    return dict(data)


def read_measure_names(path: str | Path) -> dict[str, str]:
    """The ``[measure_types]`` table of a mapping file: a county's own measure names →
    canonical measure types (``"稻田综合降镉" = "vip_combined"``), added to the shipped
    aliases. ``{}`` when the file has none.

    Raises
    ------
    InputError
        If a target is not a canonical measure type (the message lists them with their
        Chinese names).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError):
        return {}
    names = data.get("measure_types") if isinstance(data, dict) else None
    if not isinstance(names, dict):
        return {}
    known = measure_type_names()
    for theirs, canonical in names.items():
        if canonical not in known:
            raise InputError("unknown measure type in mapping", file=path, column=theirs,
                             value=canonical, fix="use one of: " + measure_type_list())
    return {str(k): str(v) for k, v in names.items()}


def measure_type_names() -> dict[str, str]:
    """Canonical measure type → its first Chinese name (for messages)."""
    table = aliases()["values"]["measure_type"]
    return {c: next((w for w in words if not w.isascii()), c) for c, words in table.items()}


def measure_type_list() -> str:
    """"低积累品种 (low_accumulation_variety), …" for messages."""
    return ", ".join(f"{zh} ({c})" for c, zh in sorted(measure_type_names().items(),
                                                        key=lambda kv: kv[1]))


_MAPPING_LINE = re.compile(
    r'^\s*(?:"([^"]+)"|\'([^\']+)\'|([^=#"\'\[]+?))\s*=\s*"([^"]*)"\s*(?:#.*)?$')


def _loads_toml(text: str) -> dict[str, Any]:
    """TOML, or the same with unquoted Chinese keys (``样点号 = "sample_id"``)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        error = exc
    data: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped == "[columns]":
            continue
        m = _MAPPING_LINE.match(line)
        if m is None:
            raise ValueError(f"line {number}: {stripped!r} is not name = \"canonical\" "
                             f"({error})")
        data[next(g for g in m.groups()[:3] if g is not None).strip()] = m.group(4)
    return data


@functools.cache
def all_alias_names() -> frozenset[str]:
    """Normalised names of every alias of every kind (to recognise header cells)."""
    names: set[str] = set()
    for table in aliases()["columns"].values():
        for canonical, words in table.items():
            names.add(normalise_name(canonical.lstrip("_")))
            names.update(normalise_name(w) for w in words)
    return frozenset(names)
