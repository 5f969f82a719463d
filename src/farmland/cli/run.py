"""``farmland run CONFIG.toml``: the whole chain of a county job from one config file.

Validates the config (:mod:`farmland.cli.config`), writes the resolved config to
``<output>/<year>/config.resolved.toml``, then runs the subcommands classify → rate →
sources → flag → plan → map → report exactly as an analyst would (each command line is
printed first), with a spinner on stderr for long steps, and ends with a summary read
from the outputs (:func:`print_closing_summary`, also used by ``farmland demo``). On two
or more cores two steps run at a time where neither reads the other's files
(:mod:`farmland.cli.parallel`, as in the demo): the steps after the classification side
by side (the plan after the flag step, whose flags it reads), then the maps and the
report, whose command lines are built from what those wrote.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from farmland.classes import LABEL_EN, LABEL_ZH
from farmland.cli import jobs_option, overwrite_option

#: flag_summary.csv column (canonical name) -> closing-summary text
FLAG_TEXTS = {"empty_cells": "空白网格 empty 1 km cells",
              "thin_zones": "点位不足连片区 thin zones",
              "uncertain_parcels": "类别不确定图斑 uncertain parcels",
              "crop_exceedance_class1": "优先保护类农产品超标 crop exceedances on class 1",
              "unclassified": "未分类图斑 unclassified parcels"}


@click.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[SECTION.KEY=VALUE]...")
@click.option("--only", default=None, metavar="STEPS",
              help="Comma list of steps to run: classify,rate,sources,flag,plan,map,report.")
@jobs_option
@overwrite_option
@click.pass_context
def command(ctx, config, overrides, only, jobs, overwrite):
    """Run the chain of a county job from CONFIG (a TOML file written by 'farmland init').

    按配置文件运行：分类 → 安全利用率 → 稀疏标记 → 布点 → 地图 → 报告。

    Values can be overridden on the command line, e.g. 'plan.n=80 project.year=2024'
    (paths there are relative to the current folder). Steps whose inputs are absent
    are skipped (no measures ledger: no rate). The resolved config is written to
    <output>/<year>/config.resolved.toml.
    """
    from farmland.cli.config import load_config
    from farmland.cli.parallel import CHAIN_IMPORTS, Worker, default_jobs, global_flags, processes
    from farmland.cli.steps import check_before_run, plan_steps, step_outputs
    from farmland.io.read_cache import reusing_reads
    from farmland.io.write import atomic_write
    from farmland.runs.folder import RESOLVED_CONFIG

    began = time.time()   # outputs older than this are an earlier run's (closing summary)
    cfg = load_config(config, overrides=overrides)
    steps = plan_steps(cfg, only=only)
    check_before_run(cfg, steps, overwrite=overwrite)
    planned = [cfg.run_dir / RESOLVED_CONFIG,
               *(p for s in steps if s.skip is None for p in step_outputs(s.name, cfg))]
    existed = {p for p in planned if p.exists()}
    workspace = _WorkspaceBefore.of(cfg, steps)
    with atomic_write(cfg.run_dir / RESOLVED_CONFIG, overwrite=overwrite) as tmp:
        tmp.write_text(cfg.to_toml(), encoding="utf-8")
    flags = global_flags(bool((ctx.obj or {}).get("quiet")))
    jobs = default_jobs(jobs)
    for item in steps:
        if item.skip:
            click.secho(f"\n== {item.title}: 跳过 skipped — {item.skip}", bold=True)
    started, maps = time.perf_counter(), []
    if len([s for s in steps if s.skip is None]) < 2:
        jobs = 1   # one step (--only classify, say): no second process to start and wait for
    worker = Worker(flags, CHAIN_IMPORTS) if jobs > 1 else None
    try:
        # the map commands draw what the steps before them wrote: they are built, with the
        # report, once those steps are done
        first = [s.name for s in steps if s.skip is None and s.name not in LATER]
        later = [s.name for s in steps if s.skip is None and s.name in LATER]
        with reusing_reads():  # the steps read the same classification.gpkg: once is enough
            failed = _run_steps(ctx, chain_steps(first, cfg, overwrite), flags, jobs, worker)
            if failed is None and later:
                graph = chain_steps(later, cfg, overwrite)
                outs = [Path(s.argv[s.argv.index("-o") + 1]) for s in graph
                        if s.argv[0] == "map"]
                planned += [o for o in outs if o not in planned]
                existed |= {o for o in outs if o.exists()}
                failed = _run_steps(ctx, graph, flags, jobs, worker)
                maps = outs
        if failed is not None:
            raise _StepFailed(*failed)
    except _StepFailed as failed:
        _remove_new(planned, existed)
        undone = workspace.undo()
        click.secho(f"farmland run stopped at step: {failed.title}; the outputs this run had "
                    f"written were removed{undone}", fg="red", err=True)
        ctx.exit(failed.code)
    except BaseException:
        _remove_new(planned, existed)
        workspace.undo()
        raise
    finally:
        if worker is not None:   # on Ctrl-C it is interrupted too: no waiting for a step
            worker.close(wait=sys.exc_info()[0] is not KeyboardInterrupt)
    click.secho(f"\nfarmland run finished in {time.perf_counter() - started:.0f} s "
                f"({processes(jobs)})", bold=True)
    print_closing_summary(cfg.run_dir, maps=maps, since=began)


#: steps whose command lines depend on what the others wrote (the map step draws the
#: overlays present), built and run once the others are done
LATER = ("map", "report")
#: typical seconds of each step on the demo county (they only decide which of the steps
#: that could start goes first); a map is one map
SECONDS = {"classify": 3.0, "rate": 1.4, "sources": 4.4, "flag": 1.0, "plan": 4.8,
           "map": 1.3, "report": 3.9}


def chain_steps(names: list[str], cfg, overwrite: bool) -> list:
    """The :class:`farmland.cli.parallel.Step` of each command of the steps ``names``
    (chain order): every step after the classification when it is among them, one step
    per map. The report prefers the second process (it imported matplotlib and openpyxl
    meanwhile), the maps this one and each other (their parcels are prepared once per
    process)."""
    from farmland.cli.parallel import Step

    found = []
    for name in names:
        after = ("classify",) if name != "classify" and "classify" in names else ()
        # the plan places its coverage points in the flags the flag step writes (with the
        # [flag] settings) instead of computing them again with the defaults
        flag_first = name == "plan" and "flag" in names
        after += ("flag",) if flag_first else ()
        for i, (title, argv) in enumerate(_commands(name, cfg, overwrite, flag_first)):
            extra = {"warm": "map", "warm_seconds": 1.3, "prefer": "here"} if name == "map" \
                else {"prefer": "worker"} if name == "report" else {}
            found.append(Step(f"{name}{i or ''}", title, argv, after=after,
                              seconds=SECONDS[name], **extra))
    return found


def _run_steps(ctx, steps: list, flags: list[str], jobs: int, worker) -> tuple[str, int] | None:
    """Run ``steps`` (:func:`farmland.cli.parallel.run_graph`); the title and exit code of
    the step that failed, else ``None``."""
    from farmland.cli.parallel import run_graph, run_here, show

    if not steps:
        return None
    failed = run_graph(steps, run_here=lambda s: run_here(ctx, s, flags), show=show, jobs=jobs,
                       worker=worker)
    if failed is None:
        return None
    key, code = failed
    return next(s.title for s in steps if s.key == key), code


class _StepFailed(Exception):
    def __init__(self, title: str, code: int) -> None:
        super().__init__(title)
        self.title, self.code = title, code


class _WorkspaceBefore:
    """The run history as a ``farmland run`` found it, to take back the runs its
    classification added when a later step fails (its outputs are removed, so a run
    pointing at them would be an orphan, and the retry would add a second one)."""

    def __init__(self, path: Path | None, existed: bool, run_ids: frozenset[str]) -> None:
        self.path, self.existed, self.run_ids = path, existed, run_ids

    @classmethod
    def of(cls, cfg, steps) -> _WorkspaceBefore:
        path = cfg["project"]["workspace"]
        if not path or not any(s.name == "classify" and s.skip is None for s in steps):
            return cls(None, False, frozenset())
        path = Path(path)
        if not path.exists():
            return cls(path, False, frozenset())
        from farmland.runs.workspace import Workspace

        return cls(path, True, frozenset(Workspace(path).runs()["run_id"].astype(str)))

    def undo(self) -> str:
        """Delete what the run added; the words for the closing message."""
        if self.path is None or not self.path.exists():
            return ""
        if not self.existed:   # the workspace (and its parcel cache) is the run's own
            import shutil

            self.path.unlink(missing_ok=True)
            shutil.rmtree(self.path.with_name(self.path.name + ".cache"), ignore_errors=True)
            return f", and the new workspace {self.path} with them"
        from farmland.runs.workspace import Workspace

        ws = Workspace(self.path)
        added = [r for r in ws.runs()["run_id"].astype(str) if r not in self.run_ids]
        for run_id in added:
            ws.delete_run(run_id)
        return (f", and run {', '.join(added)} was taken out of {self.path}" if added
                else "")


def _remove_new(paths: list[Path], existed: set[Path]) -> None:
    """Delete the outputs a failed run created (outputs that existed before stay)."""
    import shutil

    for path in paths:
        if path in existed or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _commands(name: str, cfg, overwrite: bool,
              after_flag: bool = False) -> list[tuple[str, list[str]]]:
    from farmland.cli.steps import step_commands

    return step_commands(name, cfg, overwrite=overwrite, record_config=True,
                         after_flag=after_flag)


# --------------------------------------------------------------------- closing summary
def closing_figures(out_dir: str | Path) -> dict[str, Any]:
    """The headline figures of a run folder, read from the files the steps wrote.

    Keys present only when their file exists: ``class_mu`` ({code or None: 亩} from
    ``summary.csv``, county row), ``rate`` (county row of ``rate.json``: ``rate``,
    ``target``, ``met``, ``gap_mu``), ``flags`` (county counts from
    ``flag_summary.csv`` plus ``sparse_townships``), ``plan_points`` (rows of
    ``plan.csv``); ``outputs`` lists the output files found.
    """
    from farmland.runs import folder

    out = Path(out_dir)
    figures: dict[str, Any] = {"outputs": [p for p in _output_paths(out) if p.exists()]}
    if (out / folder.CLASSIFICATION).is_file() or (out / folder.SUMMARY).is_file():
        figures["class_mu"] = _class_areas(out / folder.CLASSIFICATION, out / folder.SUMMARY)
    if (out / folder.RATE_JSON).is_file():
        rows = json.loads((out / folder.RATE_JSON).read_text(encoding="utf-8")).get("rows", [])
        county = next((r for r in rows if r.get("level") == "county"), None)
        if county is not None:
            figures["rate"] = {k: county.get(k) for k in ("rate", "target", "met", "gap_mu")}
            figures["rate"] |= {k: county[k] for k in (
                "rate_official", "rate_parcel_verified", "rate_measures_only",
                "evidence_own_mu", "evidence_rate_mu", "evidence_none_mu") if k in county}
    if (out / folder.CONTROL_JSON).is_file():
        control = json.loads((out / folder.CONTROL_JSON).read_text(encoding="utf-8"))
        figures["control"] = {k: control.get(k) for k in (
            "coverage_closed", "coverage_min", "class3_mu", "min_stages", "n_contradictions",
            "product_zones", "lot_screening")}
    if (out / folder.SOURCES_JSON).is_file():
        src = json.loads((out / folder.SOURCES_JSON).read_text(encoding="utf-8"))
        figures["sources"] = {k: src.get(k) for k in (
            "n_clusters", "area_mu", "top_candidate_area_mu", "cause_area_mu",
            "unexplained_below", "n_confirmation_samples")}
    if (out / folder.FLAG_SUMMARY).is_file():
        figures["flags"] = _flag_counts(out / folder.FLAG_SUMMARY)
    counts = folder.read_manifest(out).get("counts") or {}
    if counts.get("landuse_unknown") is not None:
        figures["landuse_unknown"] = int(counts["landuse_unknown"])
    plan_csv = out / f"{folder.PLAN_STEM}.csv"
    if plan_csv.is_file():
        import pandas as pd

        figures["plan_points"] = len(pd.read_csv(plan_csv, encoding="utf-8-sig"))
    return figures


def _output_paths(out: Path) -> list[Path]:
    from farmland.runs import folder

    report = out / folder.REPORT_DIR
    return [out / folder.CLASSIFICATION, out / folder.RATE_CSV, out / folder.GAP_PLAN,
            out / folder.ZONE_NOTICE, out / folder.LOT_SCREENING, out / folder.CONTROL_XLSX,
            out / folder.SOURCE_CANDIDATES, out / f"{folder.CONFIRM_STEM}.csv",
            out / folder.FLAGS, *(out / n for n in folder.PLAN_FILES if not n.endswith(".gpkg")),
            report / folder.REPORT_XLSX, report / folder.REPORT_HTML, out / folder.RESOLVED_CONFIG]


def _class_areas(gpkg: Path, summary: Path) -> dict[int | None, float]:
    """County area per final class: summed from the parcels, the county row of
    summary.csv only when the GeoPackage is missing."""
    import pandas as pd

    if gpkg.is_file():
        import pyogrio

        from farmland.classify.summary import class_area_table

        parcels = pyogrio.read_dataframe(gpkg, layer="parcels", read_geometry=False,
                                         columns=["township", "final_class", "area_mu"])
        county = class_area_table(parcels, decimals=None).iloc[-1]
    else:
        county = pd.read_csv(summary, encoding="utf-8-sig").iloc[-1]
    keys = {1: "class1_mu", 2: "class2_mu", 3: "class3_mu", None: "unclassified_mu"}
    return {code: float(county[col]) for code, col in keys.items()}


def _flag_counts(path: Path) -> dict[str, int]:
    import pandas as pd

    from farmland.sampling.flags import SUMMARY_HEADERS

    table = pd.read_csv(path, encoding="utf-8-sig")
    table = table.rename(columns={v: k for k, v in SUMMARY_HEADERS.items()})
    county = table.iloc[-1]
    counts = {key: int(county[key]) for key in FLAG_TEXTS if key in table}
    if "sparse" in table:
        counts["sparse_townships"] = int(table["sparse"].iloc[:-1].astype(str)
                                         .str.lower().eq("true").sum())
    return counts


def closing_lines(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """``(heading, text)`` lines of the closing summary."""
    lines = []
    if "class_mu" in figures:
        areas = figures["class_mu"]
        total = sum(areas.values())
        lines += [(f"{LABEL_ZH[c]} {LABEL_EN[c]}",
                   f"{mu:,.1f} 亩 ({100 * mu / total:.1f} %)" if total else f"{mu:,.1f} 亩")
                  for c, mu in areas.items() if c is not None or mu > 0]
    if "rate" in figures:
        lines.append(("安全利用率 Safe-utilisation rate", _rate_text(figures["rate"])))
        lines += _evidence_text(figures["rate"])
    if "control" in figures:
        lines += _control_text(figures["control"])
    if "sources" in figures:
        lines.append(("污染成因 Source clusters", _sources_text(figures["sources"])))
    if "flags" in figures:
        texts = dict(FLAG_TEXTS, sparse_townships="密度不足乡镇 sparse townships")
        lines += [("标记 Flags" if i == 0 else "", f"{texts[k]}: {v:,}")
                  for i, (k, v) in enumerate(figures["flags"].items())]
    if "plan_points" in figures:
        lines.append(("加密布点 Planned points", f"{figures['plan_points']:,} (plan.csv)"))
    if "landuse_unknown" in figures:
        lines.append(("地类不明 No land use", (f"{figures['landuse_unknown']:,} 个图斑 parcels "
                      "on the stricter column (blank/unknown DLBM)")))
    return lines


def _sources_text(s: dict[str, Any]) -> str:
    """Clusters, their area and what ranks first in them (from sources.json)."""
    from farmland.cli.sources import cause_area_lines

    return (f"{s.get('n_clusters', 0):,} clusters, {s.get('area_mu') or 0:,.1f} 亩; first: "
            + ", ".join(cause_area_lines(s))
            + f"; {s.get('n_confirmation_samples') or 0:,} confirmation samples")


def _control_text(c: dict[str, Any]) -> list[tuple[str, str]]:
    """Closed-loop coverage, contradictions, zones and lots (from control.json)."""
    def pct(v: Any) -> str:
        return "—" if v is None else f"{100 * float(v):.1f} %"

    closed = (f"已闭环 closed {pct(c.get('coverage_closed'))} · 达最低环节 at "
              f"{'+'.join(c.get('min_stages') or [])} {pct(c.get('coverage_min'))} of "
              f"{float(c.get('class3_mu') or 0):,.1f} 亩 / 目标 target 100 %")
    lines = [("严格管控闭环 Closed loop", closed),
             ("  矛盾 contradictions", f"{int(c.get('n_contradictions') or 0):,}")]
    zones = c.get("product_zones") or {}
    if zones:
        text = (f"{zones.get('n_zones', 0):,} "
                f"({float(zones.get('area_mu') or 0):,.1f} 亩, zone_notice.csv)")
        lines.append(("  管控区 product zones", text))
    if c.get("lot_screening"):
        text = " · ".join(f"{k} {v}" for k, v in c["lot_screening"].items())
        lines.append(("  粮食批次 grain lots", f"{text} (lot_screening.csv)"))
    return lines


def _evidence_text(rate: dict[str, Any]) -> list[tuple[str, str]]:
    """The three accounting readings and the evidence behind C (when rate.json has them)."""
    keys = ("rate_official", "rate_parcel_verified", "rate_measures_only")
    if any(rate.get(k) is None for k in keys):
        return []
    readings = " · ".join(f"{name} {100 * float(rate[k]):.1f} %" for name, k in
                          zip(("official", "parcel-verified", "measures-only"), keys,
                              strict=True))
    parts = [float(rate.get(f"evidence_{k}_mu") or 0.0) for k in ("own", "rate", "none")]
    total = sum(parts)
    evidence = (" · ".join(f"{name} {100 * v / total:.1f} %" for name, v in
                           zip(("own samples", "compliance rate", "no crop data"), parts,
                               strict=True)) if total > 0 else "—")
    return [("  三种口径 readings", readings), ("  计入依据 evidence", evidence)]


def _rate_text(rate: dict[str, Any]) -> str:
    value, target = rate.get("rate"), rate.get("target") or 0.91
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "无法计算（无安全利用类/严格管控类耕地）/ undefined (no class-2 or class-3 land)"
    text = f"{100 * value:.1f} % / 目标 target {100 * target:.0f} %"
    if rate.get("met"):
        return text + " — 已达成 met"
    return text + f" — 未达成 NOT met, 缺口 gap {float(rate.get('gap_mu') or 0):,.1f} 亩"


def print_closing_summary(out_dir: str | Path, *, maps: Iterable[str | Path] = (),
                          since: float | None = None) -> None:
    """Print the headline figures and output paths of a run folder (stdout).

    Parameters
    ----------
    out_dir
        The run folder (``classification.gpkg``, ``summary.csv``, ``rate.json``,
        ``flag_summary.csv``, ``plan.csv``, ``report/`` …); missing files are left out.
    maps
        HTML maps of the run (they are written outside the run folder); those that
        exist are listed.
    since
        When the run began (``time.time()``): outputs written before it (by an earlier
        run; ``--only`` reran some steps) are marked as such.
    """
    from rich.markup import escape
    from rich.table import Table

    from farmland.cli.output import console

    figures = closing_figures(out_dir)
    paths = figures["outputs"] + [Path(m) for m in maps if Path(m).exists()]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")   # a long line wraps; "ellipsis" dropped a 未明's 明
    for heading, text in closing_lines(figures):
        table.add_row(escape(heading), escape(text))
    for i, path in enumerate(paths):
        old = since is not None and path.stat().st_mtime < since
        table.add_row("输出 Outputs" if i == 0 else "",
                      escape(str(path)) + ("  （此前运行 from an earlier run）" if old else ""))
    console.print(f"\n[bold]== 结果汇总 / Summary: {escape(str(out_dir))}[/bold]")
    console.print(table)
