"""The steps of a county job (``farmland run CONFIG.toml``): which run, what each writes,
and the ``farmland`` commands each runs.

:func:`plan_steps` decides which steps run (and why one is skipped);
:func:`step_commands` builds the ``farmland`` argv lists of a step the way
``farmland demo`` does, just before the step runs, so that it sees the files the
earlier steps wrote. Output names come from :mod:`farmland.runs.folder`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmland.cli.config import BUILTIN_RULES, STEP_NAMES, RunConfig
from farmland.errors import InputError
from farmland.io.write import refuse_existing
from farmland.runs import folder

TITLES = {"classify": "分类 / Classify", "rate": "安全利用率 / Safe-utilisation rate",
          "sources": "污染成因排查 / Where the cadmium comes from",
          "flag": "数据稀疏与严格管控区 / Sparse data and strict-control zones",
          "plan": "加密采样布点 / Sampling plan", "map": "地图 / Maps",
          "report": "报告 / Report (Excel + HTML)"}


@dataclass(frozen=True)
class Step:
    """A step of the chain and, when it does not run, why (``skip``)."""

    name: str
    skip: str | None = None

    @property
    def title(self) -> str:
        return f"{STEP_NAMES.index(self.name) + 1}  {TITLES[self.name]}"


def parse_only(only: str | Sequence[str] | None) -> list[str]:
    """Step names of ``--only`` (``"classify,rate"``) in chain order; all when ``None``."""
    if only is None:
        return list(STEP_NAMES)
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in STEP_NAMES]
    if unknown or not names:
        raise InputError("unknown step in --only", value=",".join(unknown),
                         fix="choose from " + ",".join(STEP_NAMES))
    return [n for n in STEP_NAMES if n in names]


def plan_steps(cfg: RunConfig, *, only: str | Sequence[str] | None = None) -> list[Step]:
    """The steps to take, each with the reason it is skipped (inputs absent) or ``None``.

    A step asked for by name in ``only`` whose inputs are absent is refused instead.
    """
    steps = []
    for name in parse_only(only):
        skip = None
        if name == "rate" and not cfg["inputs"]["measures"]:
            skip = "未提供措施台账 / no measures ledger ([inputs] measures is empty)"
            if only is not None:
                raise InputError("the rate step needs a measures ledger", file=cfg.source,
                                 column="inputs.measures", fix="set measures in [inputs]")
        if name == "sources" and not cfg["inputs"]["pollution_sources"]:
            skip = "未提供污染源 / no pollution sources ([inputs] pollution_sources is empty)"
            if only is not None:
                raise InputError("the sources step needs the pollution sources", file=cfg.source,
                                 column="inputs.pollution_sources",
                                 fix="set pollution_sources in [inputs]")
        steps.append(Step(name, skip))
    return steps


def check_before_run(cfg: RunConfig, steps: Sequence[Step], *, overwrite: bool) -> None:
    """Refuse before any work: outputs that exist without ``overwrite``, or a step that
    needs a classification this run neither has nor makes."""
    names = [s.name for s in steps if s.skip is None]
    gpkg = cfg.run_dir / folder.CLASSIFICATION
    if names and "classify" not in names and not gpkg.is_file():
        raise InputError("no classification in the run folder", file=gpkg,
                         fix="run the classify step first (add classify to --only or drop "
                             "--only)")
    targets = [cfg.run_dir / folder.RESOLVED_CONFIG]
    refuse_existing([*targets, *(p for n in names for p in step_outputs(n, cfg))],
                    overwrite=overwrite)


def step_outputs(name: str, cfg: RunConfig) -> list[Path]:
    """Files a step writes (the township maps of ``townships = "all"`` are not known yet)."""
    run = cfg.run_dir
    if name == "map":
        towns = cfg["map"]["townships"]
        names = ["county", "sampling", "causes", *([] if towns == "all" else towns)]
        return [map_path(cfg, n) for n in names]
    if name == "report":
        return [run / folder.REPORT_DIR / n for n in folder.REPORT_FILES]
    names = {"classify": folder.CLASSIFY_FILES, "rate": folder.RATE_FILES,
             "sources": folder.SOURCES_FILES,
             "flag": folder.FLAG_FILES, "plan": (*folder.PLAN_FILES, folder.PLAN_EFFECT)}[name]
    return [run / n for n in names]


def map_path(cfg: RunConfig, name: str) -> Path:
    """``<maps>/<name>_<year>.html``; ``name`` is ``county``, ``sampling`` or a township."""
    stem = re.sub(r'[\\/:*?"<>|\s]+', "_", name)
    return Path(cfg["project"]["maps"]) / f"{stem}_{cfg['project']['year']}.html"


def step_commands(name: str, cfg: RunConfig, *, overwrite: bool = False,
                  record_config: bool = False,
                  after_flag: bool = False) -> list[tuple[str, list[str]]]:
    """``(title, argv)`` of the ``farmland`` subcommands of one step.

    Call it just before the step runs: the map step draws the overlays the earlier
    steps wrote into the run folder, and ``townships = "all"`` takes the townships from
    its ``summary.csv``. ``record_config`` passes ``--run-config config.resolved.toml``
    to classify (the hook that records the config in ``manifest.json``). ``after_flag``:
    the flag step runs first in the same job, and the plan reads its flags.
    """
    ow = ["--overwrite"] if overwrite else []
    title = Step(name).title
    if name == "map":
        return [(f"{title}: {label}", [*argv, *ow]) for label, argv in _map_argvs(cfg)]
    build = {"classify": _classify_argv, "rate": _rate_argv, "sources": _sources_argv,
             "flag": _flag_argv,
             "plan": lambda c: _plan_argv(c, flags=after_flag), "report": _report_argv}[name]
    argv = build(cfg)
    if name == "classify" and record_config:
        argv += ["--run-config", str(cfg.run_dir / folder.RESOLVED_CONFIG)]
    return [(title, [*argv, *ow])]


def _opt(flag: str, value: Any) -> list[str]:
    """``[flag, value]`` when ``value`` is set, else ``[]``."""
    return [flag, str(value)] if value not in (None, "", []) else []


def _classify_argv(cfg: RunConfig) -> list[str]:
    p, i, c = cfg["project"], cfg["inputs"], cfg["classify"]
    argv = ["classify", "--parcels", i["parcels"], *_opt("--parcels-layer", i["parcels_layer"]),
            *_opt("--townships", i["townships"])]
    argv += [a for s in i["soil_samples"] for a in ("--samples", s)]
    argv += [a for s in i["crop_samples"] for a in ("--crops", s)]
    if c["rules"] != BUILTIN_RULES:
        argv += ["--rules", c["rules"]]
    argv += _opt("--interpolator", c["interpolator"]) + _opt("--mapping", i["mapping"])
    argv += ["--outliers", c["outliers"]]
    if c["units"] != "parcel":  # the default is left out: the argv of earlier configs
        argv += ["--units", c["units"]]
    if p["workspace"]:
        argv += ["--workspace", p["workspace"], "--label", f"{p['year']} {p['name']}".strip()]
        if c["variograms"] != "auto":  # the default is left out, as for units
            argv += ["--variograms", c["variograms"]]
    return argv + ["--seed", str(p["seed"]), *_opt("--crs", p["crs"]), "-o", str(cfg.run_dir)]


def _rate_argv(cfg: RunConfig) -> list[str]:
    p, r, run = cfg["project"], cfg["rate"], str(cfg.run_dir)
    argv = ["rate", run, "--measures", cfg["inputs"]["measures"],
            *_opt("--mapping", cfg["inputs"]["mapping"]),
            *_opt("--closed-loop", cfg["inputs"]["closed_loop"]), "--year", str(p["year"]),
            "--target", repr(p["target"]), "--order", r["gap_order"]]
    mode = r["accounting"]
    if not r["count_unverified"] and mode == "official":  # the older switch, kept for configs
        mode = "parcel_verified"
    return argv + ["--accounting", mode, "--min-township-samples",
                   str(r["min_township_crop_samples"]), "-o", run]


def _sources_argv(cfg: RunConfig) -> list[str]:
    i, p, run = cfg["inputs"], cfg["project"], str(cfg.run_dir)
    return ["sources", run, "--sources", i["pollution_sources"], *_opt("--rivers", i["rivers"]),
            *_opt("--geology", i["geology"]), *_opt("--wind", i["wind_rose"]),
            "--seed", str(p["seed"]), *_opt("--crs", p["crs"]), "-o", run]


def _flag_argv(cfg: RunConfig) -> list[str]:
    f, run = cfg["flag"], str(cfg.run_dir)
    return ["flag", run, *_opt("--townships", cfg["inputs"]["townships"]),
            "--cell-size", repr(f["cell_size"]), "--min-density", repr(f["min_density"]),
            "--min-zone-samples", str(f["min_zone_samples"]), "--zone-gap", repr(f["zone_gap"]),
            "--probability-threshold", repr(f["probability_threshold"]),
            "--margin", repr(f["margin"]), "-o", run]


def _plan_argv(cfg: RunConfig, flags: bool = False) -> list[str]:
    """``flags``: the flag step runs before this one, so its flags.gpkg (made with the
    [flag] settings) places the coverage points."""
    pl, run = cfg["plan"], str(cfg.run_dir)
    return ["plan", run, "--n", str(pl["n"]), "--mode", pl["mode"],
            "--min-spacing", repr(pl["min_spacing"]), *_opt("--exclusions", pl["exclusions"]),
            *_opt("--sources", cfg["inputs"]["pollution_sources"]), "--seed", str(pl["seed"]),
            *_opt("--flags", cfg.run_dir / folder.FLAGS if flags else None), "-o", run]


def _report_argv(cfg: RunConfig) -> list[str]:
    run = cfg.run_dir
    return ["report", str(run), "--lang", cfg["report"]["lang"], "-o", str(run / folder.REPORT_DIR)]


#: map -> (layers, title); townships get the default layers (all that are present)
MAPS = {"county": ("parcels,samples,outliers,zones,sources,townships",
                   "耕地土壤环境质量类别图 Farmland soil classes"),
        "sampling": ("parcels,samples,crops,flags,plan,sources,townships",
                     "加密采样需求与布点 Sampling needs and planned points"),
        "causes": ("parcels,clusters,candidate_links,hotspots,confirm,sources,townships",
                   "污染成因排查 Where the cadmium comes from")}


def _map_argvs(cfg: RunConfig) -> list[tuple[str, list[str]]]:
    """County map (classes), sampling map (flags, crops, planned points; when the flag or
    plan outputs exist), then one detail map per township asked for."""
    run, p, i = cfg.run_dir, cfg["project"], cfg["inputs"]
    rate = run / folder.RATE_JSON
    rows = _rate_rows(rate)
    beside = {"--zones": run / folder.FLAGS, "--flags": run / folder.FLAGS,
              "--plan": run / folder.PLAN_GPKG, "--causes": run / folder.SOURCES_GPKG}
    present = {flag: str(path) for flag, path in beside.items() if path.is_file()}

    def files(*flags: str) -> list[str]:
        return [a for f in flags if f in present for a in (f, present[f])]

    def rate_json(name: str) -> list[str]:
        return ["--rate-json", str(rate)] if name in rows else []

    maps = [("county", ["--layers", MAPS["county"][0], "--title",
                        _title(p, None, MAPS["county"][1]), *files("--zones"), *rate_json("")])]
    if "--flags" in present or "--plan" in present:
        maps.append(("sampling", ["--layers", MAPS["sampling"][0], "--title",
                                  _title(p, None, MAPS["sampling"][1]),
                                  *files("--flags", "--plan")]))
    if "--causes" in present:
        maps.append(("causes", ["--layers", MAPS["causes"][0], "--title",
                                _title(p, None, MAPS["causes"][1]), *files("--causes")]))
    maps += [(town, ["--township", town, "--title", _title(p, town, MAPS["county"][1]),
                     *files("--zones", "--plan"), *rate_json(town)])
             for town in map_townships(cfg)]
    common = (_opt("--sources", i["pollution_sources"]) + _opt("--townships", i["townships"])
              + _opt("--crs", p["crs"]) + ["--tiles", cfg["map"]["tiles"]])
    labels = {"county": "全县 county", "sampling": "加密采样 sampling", "causes": "污染成因 causes"}
    return [(labels.get(name, name), ["map", str(run / folder.CLASSIFICATION), "-o",
                                      str(map_path(cfg, name)), *argv, *common])
            for name, argv in maps]


def _title(project: dict[str, Any], township: str | None, what: str) -> str:
    return " ".join(x for x in (project["county"], township, str(project["year"]), what) if x)


def _rate_rows(path: Path) -> set[str]:
    """Names with a row in ``rate.json`` (``""`` for the county row)."""
    if not path.is_file():
        return set()
    rows = json.loads(path.read_text(encoding="utf-8")).get("rows", [])
    return {"" if r.get("level") == "county" else str(r.get("name")) for r in rows
            if r.get("level") in ("county", "township")}


def map_townships(cfg: RunConfig) -> list[str]:
    """Townships to draw detail maps for, checked against the run's ``summary.csv``."""
    wanted = cfg["map"]["townships"]
    if not wanted:
        return []
    import pandas as pd

    table = pd.read_csv(cfg.run_dir / folder.SUMMARY, encoding="utf-8-sig", dtype={"township": str})
    known = [t for t in table["township"].iloc[:-1].astype(str) if t != "(none)"]
    if wanted == "all":
        return known
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise InputError("no such township in the classification", file=cfg.source,
                         column="map.townships", value=", ".join(unknown),
                         fix="choose from " + ", ".join(known[:30]) + ' or "all"')
    return list(wanted)
