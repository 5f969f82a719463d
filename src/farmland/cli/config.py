"""The config file of a county job (``farmland init``, ``farmland run CONFIG.toml``).

One TOML file names the inputs and every option of the chain classify → rate →
flag → plan → map → report. :func:`load_config` reads it, refuses unknown sections
and keys (a typo) and wrong types with the file and the key named, fills the
defaults of :data:`SCHEMA`, applies ``section.key=value`` overrides from the command
line and resolves every path to an absolute one: paths in the file are relative to
the file's folder, paths given as overrides to the current folder. The result, a
:class:`RunConfig`, can be written back as TOML (:meth:`RunConfig.to_toml`), which is
itself a valid config (``config.resolved.toml`` in the run folder).

Which steps run, and the commands each runs, are in :mod:`farmland.cli.steps`.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmland.errors import InputError
from farmland.runs.folder import RESOLVED_CONFIG

STEP_NAMES = ("classify", "rate", "sources", "flag", "plan", "map", "report")
RESOLVED_FILE = RESOLVED_CONFIG
BUILTIN_RULES = "county_practice"
PLACEHOLDER_PREFIX = "path/to/"
PLACEHOLDER_FIX = ('set them to your files (optional inputs to "" or [] if you have none); '
                   "relative paths start at the config file's folder")
NOT_FOUND_FIX = ("correct the path (relative paths start at the config file's folder, those of "
                 "overrides at the current folder)")


@dataclass(frozen=True)
class Key:
    """One config key: its kind, default and allowed values.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``choice``, ``path``
    (a file or folder, ``""`` = none), ``paths`` (a list of files), ``rules``
    (``"county_practice"`` or a path), ``name_or_path`` (one of ``choices`` or a path) and
    ``names_or_all`` (a list of names or ``"all"``).
    """

    kind: str
    default: Any = None
    required: bool = False
    check: Callable[[Any], bool] | None = None
    allowed: str = ""
    choices: tuple[str, ...] = ()
    must_exist: bool = False


def _range(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: lo <= v <= hi


#: section -> key -> Key; the order here is the order of the written TOML
SCHEMA: dict[str, dict[str, Key]] = {
    "project": {
        "name": Key("str", "farmland"),
        "county": Key("str", ""),
        "year": Key("int", required=True, check=_range(1949, 2200), allowed="a year, e.g. 2023"),
        "target": Key("float", 0.91, check=_range(0, 1), allowed="a share 0..1, e.g. 0.91"),
        "crs": Key("str", "", check=lambda v: v == "" or _known_crs(v),
                   allowed="an EPSG code pyproj knows, e.g. \"EPSG:4545\" (or \"\" for none)"),
        "seed": Key("int", 0, check=_range(0, 2**32 - 1), allowed="an integer 0..4294967295"),
        "output": Key("path", "farmland_output", required=True),
        "maps": Key("path", "maps", required=True),
        "workspace": Key("path", ""),
    },
    "inputs": {
        "parcels": Key("path", required=True, must_exist=True),
        "parcels_layer": Key("str", ""),
        "soil_samples": Key("paths", required=True, must_exist=True),
        "crop_samples": Key("paths", [], must_exist=True),
        "measures": Key("path", "", must_exist=True),
        "closed_loop": Key("path", "", must_exist=True),
        "pollution_sources": Key("path", "", must_exist=True),
        "rivers": Key("path", "", must_exist=True),
        "geology": Key("path", "", must_exist=True),
        "wind_rose": Key("path", "", must_exist=True),
        "townships": Key("path", "", must_exist=True),
        "mapping": Key("path", "", must_exist=True),
    },
    "classify": {
        "rules": Key("rules", BUILTIN_RULES, must_exist=True),
        "interpolator": Key("choice", "kriging", choices=("kriging", "idw", "")),
        "outliers": Key("choice", "flag", choices=("flag", "exclude", "keep")),
        "units": Key("name_or_path", "parcel", choices=("parcel", "village", "township"),
                     must_exist=True),
        "variograms": Key("choice", "auto", choices=("auto", "refit", "reuse")),
    },
    "rate": {
        "accounting": Key("choice", "official",
                          choices=("official", "parcel_verified", "measures_only")),
        "min_township_crop_samples": Key("int", 5, check=_range(1, 1000), allowed="1..1000"),
        "count_unverified": Key("bool", True),
        "gap_order": Key("choice", "area", choices=("area", "risk")),
    },
    "flag": {
        "cell_size": Key("float", 1000.0, check=lambda v: 0 < v <= 100_000,
                         allowed="metres, 0 < m <= 100000"),
        "min_density": Key("float", 1.0, check=_range(0, 1000), allowed="samples/km², 0..1000"),
        "min_zone_samples": Key("int", 3, check=_range(1, 1000), allowed="an integer 1..1000"),
        "zone_gap": Key("float", 30.0, check=_range(0, 1000), allowed="0..1000 (metres)"),
        "probability_threshold": Key("float", 0.2, check=_range(0, 1), allowed="a share 0..1"),
        "margin": Key("float", 0.1, check=_range(0, 1), allowed="a share 0..1"),
    },
    "plan": {
        "n": Key("int", 60, check=_range(1, 100_000), allowed="an integer 1..100000"),
        "mode": Key("choice", "combined",
                    choices=("combined", "coverage", "uncertainty", "sources")),
        "min_spacing": Key("float", 250.0, check=_range(0, 100_000), allowed="metres 0..100000"),
        "exclusions": Key("path", "", must_exist=True),
        "seed": Key("int", None, check=_range(0, 2**32 - 1),
                    allowed="an integer 0..4294967295 (default: [project] seed)"),
    },
    "map": {
        "tiles": Key("str", "none"),
        "townships": Key("names_or_all", []),
    },
    "report": {
        "lang": Key("choice", "zh", choices=("zh", "en")),
    },
}

_KIND_TEXT = {"str": "a text string", "int": "an integer", "float": "a number",
              "bool": "true or false", "path": 'a path in quotes ("" = none)',
              "paths": 'a list of paths, e.g. ["a.csv", "b.csv"]',
              "rules": f'"{BUILTIN_RULES}" or the path of a rules TOML',
              "name_or_path": "one of the names or the path of a file",
              "names_or_all": 'a list of township names, e.g. ["清水镇"], or "all"'}


@dataclass(frozen=True)
class RunConfig:
    """A validated config with defaults filled and paths absolute.

    ``values[section][key]``; absent optional paths are ``""``, absent lists ``[]``.
    ``source`` is the config file it was read from.
    """

    values: dict[str, dict[str, Any]]
    source: Path

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    @property
    def run_dir(self) -> Path:
        """The run folder ``<project.output>/<project.year>``."""
        return Path(self.values["project"]["output"]) / str(self.values["project"]["year"])

    def to_toml(self) -> str:
        """The resolved config as TOML (itself a valid config for ``farmland run``)."""
        head = ("# farmland run: resolved config (defaults filled, overrides applied, paths "
                "absolute)\n# 运行时实际使用的配置（已填默认值、应用命令行覆盖、路径为绝对路径）\n"
                f"# source: {self.source}\n")
        return head + dumps_toml(self.values)


# ------------------------------------------------------------------------- reading
def load_config(path: str | os.PathLike[str], *, overrides: Sequence[str] = (),
                cwd: str | os.PathLike[str] | None = None,
                check_files: bool = True) -> RunConfig:
    """Read, validate and resolve a config file.

    Parameters
    ----------
    path
        The TOML file. Relative paths inside it are relative to its folder.
    overrides
        ``section.key=value`` items (``plan.n=80``, ``project.year=2024``); the value is
        read as a TOML value when it parses as one, else as text. Relative paths in
        overrides are relative to ``cwd``.
    cwd
        Base folder of override paths (default: the current working directory).
    check_files
        Refuse template placeholders and input files that do not exist.

    Returns
    -------
    RunConfig

    Raises
    ------
    InputError
        Naming the file (or "command line override"), the key, the value received and
        the allowed keys or values; all problems found are reported at once.
    """
    path = Path(path)
    raw = read_toml(path)
    parsed = parse_overrides(overrides)
    problems = check_tree(raw) + check_tree(parsed, override=True)
    _raise(problems, path)
    base, here = path.resolve().parent, Path(cwd or Path.cwd()).resolve()
    values = _merge([(_defaults(), base), (raw, base), (parsed, here)])
    if values["plan"]["seed"] is None:
        values["plan"]["seed"] = values["project"]["seed"]
    _raise(check_complete(values, raw, parsed, check_files=check_files), path)
    return RunConfig(values, path.resolve())


def _defaults() -> dict[str, dict[str, Any]]:
    return {s: {k: key.default for k, key in keys.items() if key.default is not None}
            for s, keys in SCHEMA.items()}


def _merge(trees: list[tuple[dict, Path]]) -> dict[str, dict[str, Any]]:
    """Later trees win; each tree's relative paths start at its own folder."""
    values: dict[str, dict[str, Any]] = {s: dict.fromkeys(keys) for s, keys in SCHEMA.items()}
    for tree, root in trees:
        for section, items in tree.items():
            for name, value in items.items():
                key = SCHEMA[section][name]
                values[section][name] = _resolve(key, _normal(key, value), root)
    return values


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; a syntax error becomes an :class:`InputError`."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the config file ({exc.strerror or exc})", file=path,
                         fix="give the path of a farmland TOML config (farmland init writes one)"
                         ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=path,
                         fix="check quotes, brackets and '=' on that line") from None


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["plan.n=80", "report.lang=en"]`` → ``{"plan": {"n": 80}, "report": {"lang": "en"}}``.

    The value is read as TOML (``80`` → int, ``true`` → bool, ``["a", "b"]`` → list);
    text that is not a TOML value (``en``, ``EPSG:4545``, ``data/x.csv``) is kept as text.
    Unknown sections and keys are reported by :func:`check_tree`.
    """
    tree: dict[str, dict[str, Any]] = {}
    for item in items:
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*=(.*)", item, flags=re.DOTALL)
        if not m:
            raise InputError("an override must look like section.key=value",
                             file="command line override", value=item,
                             fix="e.g. plan.n=80 or project.year=2024")
        section, key, text = m.group(1), m.group(2), m.group(3).strip()
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        kind = SCHEMA.get(section, {}).get(key, Key("str")).kind
        textual = ("str", "choice", "path", "rules", "name_or_path")
        if kind in textual and not isinstance(value, str):
            value = text  # project.name=2024 is the text "2024"
        tree.setdefault(section, {})[key] = value
    return tree


# ---------------------------------------------------------------------- validating
def check_tree(tree: dict[str, Any], *, override: bool = False) -> list[tuple[str, str, str]]:
    """Unknown sections/keys and wrong types, as ``(where, problem, fix)`` triples."""
    where = "command line override" if override else ""
    problems = []
    for section, items in tree.items():
        if not isinstance(items, dict):  # a key above the first [section]
            owner = next((s for s, keys in SCHEMA.items() if section in keys), None)
            problems.append((where, f"key '{section}' is outside any section",
                             f"move it under [{owner}]" if owner else
                             "allowed sections: " + ", ".join(SCHEMA)))
            continue
        if section not in SCHEMA:
            problems.append((where, f"unknown section [{section}]",
                             "allowed sections: " + ", ".join(SCHEMA)))
            continue
        for name, value in items.items():
            key = SCHEMA[section].get(name)
            if key is None:
                problems.append((where, f"unknown key '{section}.{name}'",
                                 f"allowed keys in [{section}]: " + ", ".join(SCHEMA[section])))
            elif (problem := check_value(key, value)) is not None:
                problems.append((where, f"'{section}.{name}' {problem} (got {value!r})", ""))
    return problems


def check_value(key: Key, value: Any) -> str | None:
    """Why ``value`` does not fit ``key`` (``None`` when it does)."""
    kind = key.kind
    ok_type = {
        "str": isinstance(value, str), "choice": isinstance(value, str),
        "path": isinstance(value, str), "rules": isinstance(value, str),
        "name_or_path": isinstance(value, str) and value != "",
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "paths": isinstance(value, str) or (isinstance(value, list)
                                            and all(isinstance(v, str) for v in value)),
        "names_or_all": value == "all" or (isinstance(value, list)
                                           and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok_type:
        return f"must be {_allowed(key)}"
    if kind == "float" and not math.isfinite(value):
        return "must be a finite number"
    if kind == "choice" and value not in key.choices:
        return f"must be {_allowed(key)}"
    if key.check is not None and not key.check(value):
        return f"must be {key.allowed}"
    return None


def check_complete(values: dict[str, dict[str, Any]], raw: dict, parsed: dict, *,
                   check_files: bool) -> list[tuple[str, str, str]]:
    """Required keys present, placeholders replaced, input files existing."""
    problems, placeholders = [], []
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            value = values[section][name]
            if key.required and value in (None, "", []):
                problems.append(("", f"'{section}.{name}' is required",
                                 f"set {name} in [{section}]"))
            elif check_files and key.must_exist:
                written = _given(raw, parsed, section, name)
                if any(_is_placeholder(t) for t in _as_list(written)):
                    placeholders.append(f"{section}.{name}")
                    continue
                fix = (f"use {_allowed(key)}; " if key.kind == "name_or_path" else "") + NOT_FOUND_FIX
                where = "command line override" if name in parsed.get(section, {}) else ""
                problems += [(where, f"'{section}.{name}': file not found: {p}", fix)
                             for p in _as_list(value)
                             if p and p != BUILTIN_RULES and p not in key.choices
                             and not Path(p).exists()]
    if placeholders:
        problems.insert(0, ("", "template placeholders path/to/… still in place: "
                            + ", ".join(placeholders),
                            PLACEHOLDER_FIX))
    if values["plan"]["mode"] == "sources" and not values["inputs"]["pollution_sources"]:
        problems.append(("", "'plan.mode' is \"sources\" but 'inputs.pollution_sources' is empty",
                         "give the pollution sources file or choose another plan mode"))
    return problems


def _known_crs(value: Any) -> bool:
    from farmland.crs import parse_crs
    from farmland.errors import CRSError

    try:
        parse_crs(value)
    except CRSError:
        return False
    return True


def _is_placeholder(text: Any) -> bool:
    return str(text).replace("\\", "/").startswith(PLACEHOLDER_PREFIX)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _given(raw: dict, parsed: dict, section: str, name: str) -> Any:
    """The value as written (before path resolution): override, else file, else default."""
    for tree in (parsed, raw):
        if name in tree.get(section, {}):
            return tree[section][name]
    return SCHEMA[section][name].default


def _allowed(key: Key) -> str:
    if key.kind == "choice":
        return " or ".join(f'"{c}"' for c in key.choices)
    if key.kind == "name_or_path":
        return ", ".join(f'"{c}"' for c in key.choices) + " or the path of a file"
    return key.allowed or _KIND_TEXT[key.kind]


def _raise(problems: list[tuple[str, str, str]], path: Path) -> None:
    """One :class:`InputError` for every problem found (one line)."""
    if not problems:
        return
    if len(problems) == 1:
        where, problem, fix = problems[0]
        raise InputError(problem, file=where or path, fix=fix or None)
    texts = [f"{(w + ': ') if w else ''}{p}{(' — ' + f) if f else ''}" for w, p, f in problems]
    raise InputError(f"{len(problems)} problems: " + "; ".join(texts), file=path,
                     fix="correct each key named above")


# ----------------------------------------------------------------------- resolving
def _normal(key: Key, value: Any) -> Any:
    if key.kind == "paths" and isinstance(value, str):
        return [value] if value else []
    if key.kind == "float":
        return float(value)
    return _copy(value)


def _resolve(key: Key, value: Any, root: Path) -> Any:
    """Absolute paths (relative ones start at ``root``); ``""`` stays ``""``."""
    if key.kind == "path":
        return _abspath(value, root)
    if key.kind == "paths":
        return [_abspath(v, root) for v in value if v]
    if key.kind == "rules" and value != BUILTIN_RULES:
        return _abspath(value, root)
    if key.kind == "name_or_path" and value not in key.choices:
        return _abspath(value, root)
    return value


def _abspath(text: str, root: Path) -> str:
    if not text:
        return ""
    path = Path(text).expanduser()
    return os.path.normpath(path if path.is_absolute() else root / path)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# ------------------------------------------------------------------------- writing
def dumps_toml(values: dict[str, dict[str, Any]]) -> str:
    """Sections of scalars and lists as TOML text (the subset configs use)."""
    lines = []
    for section, items in values.items():
        lines.append(f"[{section}]")
        lines += [f"{name} = {toml_value(value)}" for name, value in items.items()]
        lines.append("")
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """One TOML value: string, bool, int, float or a list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are TOML escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def read_resolved(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``config.resolved.toml`` as a plain dict (for the classification manifest)."""
    return read_toml(Path(path))
