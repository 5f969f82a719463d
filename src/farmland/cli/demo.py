"""``farmland demo``: the whole chain on the bundled demo county.

The demo runs the same subcommands an analyst would, and prints each command line
first, so the output doubles as a tutorial:

2023 classification → closed loop, rate and gap → where the cadmium comes from →
sparse-data flags and strict-control zones → sampling plan → maps → report; then the
2024 re-sampling (new soil and crop samples, new measures) as a second run in the same
workspace, its closed loop and rate, and the diff of the two runs.

On a machine with two cores two steps run at once where neither reads the other's
outputs (:mod:`farmland.cli.parallel`); ``--jobs 1`` runs them one after another. The
outputs are the same either way.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from farmland.cli import jobs_option
from farmland.cli.parallel import Step
from farmland.cli.parallel import show as _show
from farmland.errors import InputError

DEMO_FILES = ("parcels.gpkg", "soil_samples.csv", "crop_samples.csv", "measures_2023.csv",
              "pollution_sources.geojson", "townships.gpkg",
              "resample_2024/soil_samples.csv", "resample_2024/crop_samples.csv",
              "resample_2024/measures_2024.csv", "strict_control_2023.csv", "grain_lots_2023.csv",
              "resample_2024/strict_control_2024.csv", "rivers.gpkg", "geology.gpkg",
              "wind_rose.csv")

#: the 2023 maps and the change map draw the same parcels, simplified and reprojected once
#: per process (≈ 1.3 s): they are left to the demo's process (the worker takes the report
#: and the 2024 steps meanwhile), and a process that drew one gets the others first (once
#: it has, the worker leaves them to it)
_MAP23 = {"warm": "map 2023", "warm_seconds": 1.3, "prefer": "here"}

#: every step reads the 2023 classification; these also read the 2023 closed loop
_LOOP23 = ("classify23", "control23")


def demo_steps(data: Path, out: Path, maps: Path, *, overwrite: bool) -> list[Step]:
    """The demo as ``farmland`` subcommands in chain order, each with the steps whose
    outputs it reads (``after``) and its typical seconds on the demo (measured; they only
    decide which of the steps that could start goes first)."""
    from farmland.runs import folder as f

    d, o = data, out
    ws = str(o / f.WORKSPACE)
    ow = ["--overwrite"] if overwrite else []
    y23, y24 = o / "2023", o / "2024"
    soil23, crops23 = str(d / "soil_samples.csv"), str(d / "crop_samples.csv")
    sources, towns = str(d / "pollution_sources.geojson"), str(d / "townships.gpkg")
    common = ["--parcels", str(d / "parcels.gpkg"), "--parcels-layer", "DLTB",
              "--townships", towns, "--crs", "EPSG:4545"]
    cls23 = str(y23 / f.CLASSIFICATION)
    return [
        Step("classify23", "1  Classify 2023 (detailed survey) / 2023 年分类",
             ["classify", *common, "--samples", soil23, "--crops", crops23, "--workspace", ws,
              "--label", "2023 详查 detailed survey", "-o", str(y23), *ow],
             seconds=3.4),
        Step("control23", "2  Strict-control closed loop, product zones, grain lots / "
                          "严格管控闭环、管控区、粮食批次",
             ["control", str(y23), "--ledger", str(d / "strict_control_2023.csv"),
              "--measures", str(d / "measures_2023.csv"), "--lots", str(d / "grain_lots_2023.csv"),
              "-o", str(y23), *ow],
             after=("classify23",), seconds=1.4),
        Step("rate23", "2b Safe-utilisation rate 2023 / 安全利用率",
             ["rate", str(y23), "--measures", str(d / "measures_2023.csv"),
              "--closed-loop", str(d / "strict_control_2023.csv"), "-o", str(y23), *ow],
             after=("classify23",), seconds=0.8),
        Step("sources23", "2c Where the cadmium comes from / 污染成因排查",
             ["sources", str(y23), "--sources", sources,
              "--rivers", str(d / "rivers.gpkg"), "--geology", str(d / "geology.gpkg"),
              "--wind", str(d / "wind_rose.csv"), "--seed", "2023", "-o", str(y23), *ow],
             after=("classify23",), seconds=4.6),
        Step("flag23", "3  Sparse data and strict-control zones / 数据稀疏与严格管控区",
             ["flag", str(y23), "--townships", towns, "-o", str(y23), *ow],
             after=("classify23",), seconds=1.0),
        # the plan's coverage points go into the flags the flag step wrote (and drew)
        Step("plan23", "4  Sampling plan / 加密采样布点",
             ["plan", str(y23), "--n", "60", "--sources", sources, "--seed", "2023",
              "--flags", str(y23 / f.FLAGS), "-o", str(y23), *ow],
             after=("classify23", "flag23"), seconds=4.8),
        Step("map_county", "5  County map / 全县地图",
             ["map", cls23, "-o", str(maps / "demo_county.html"),
              "--layers", "parcels,samples,outliers,zones,sources,townships",
              "--rate-json", str(y23 / f.RATE_JSON), "--zones", str(y23 / f.FLAGS),
              "--sources", sources, "--townships", towns, *ow],
             after=("classify23", "rate23", "flag23"), seconds=2.2, **_MAP23),
        Step("map_sampling", "5b Sampling map: flags, crops, planned points / 加密采样图",
             ["map", cls23, "-o", str(maps / "demo_sampling.html"),
              "--layers", "parcels,samples,crops,flags,plan,sources,townships",
              "--title", "加密采样需求与布点 Sampling needs and planned points",
              "--flags", str(y23 / f.FLAGS), "--plan", str(y23 / f.PLAN_GPKG),
              "--sources", sources, "--townships", towns, *ow],
             after=("classify23", "flag23", "plan23"), seconds=1.0, **_MAP23),
        Step("map_township", "5c Township detail map / 乡镇详图",
             ["map", cls23, "-o", str(maps / "demo_dongyan.html"),
              "--township", "东岩乡", "--rate-json", str(y23 / f.RATE_JSON),
              "--zones", str(y23 / f.FLAGS), "--plan", str(y23 / f.PLAN_GPKG),
              "--sources", sources, "--townships", towns, *ow],
             after=("classify23", "rate23", "flag23", "plan23"), seconds=0.6, **_MAP23),
        Step("map_control", "5d Strict-control closed loop map / 严格管控闭环图",
             ["map", cls23, "--control", str(y23 / f.CONTROL_GPKG),
              "--townships", towns, "-o", str(maps / "demo_control.html"), *ow],
             after=_LOOP23, seconds=0.9, **_MAP23),
        Step("map_sources", "5e Where the cadmium comes from: clusters and candidate sources / "
                            "污染成因图",
             ["map", cls23, "--causes", str(y23 / f.SOURCES_GPKG), "--sources", sources,
              "--townships", towns, "-o", str(maps / "demo_sources.html"), *ow],
             after=("classify23", "sources23"), seconds=0.7, **_MAP23),
        Step("report23", "6  Report (Excel + HTML) / 报告",
             ["report", str(y23), "--county", "示范县", "-o", str(y23 / f.REPORT_DIR), *ow],
             # the worker imported matplotlib and openpyxl while 2023 was classified
             after=(*_LOOP23, "rate23", "sources23", "flag23", "plan23"), seconds=4.1,
             prefer="worker"),
        # the closed loop and the rate look up earlier runs in the run history, which
        # this step writes: it waits for them
        Step("classify24", "7  Classify 2024 with the re-sampling data / 2024 年动态调整",
             ["classify", *common, "--samples", soil23,
              "--samples", str(d / "resample_2024" / "soil_samples.csv"),
              "--crops", crops23, "--crops", str(d / "resample_2024" / "crop_samples.csv"),
              "--workspace", ws, "--label", "2024 加密 re-sampling", "-o", str(y24), *ow],
             after=(*_LOOP23, "rate23"), seconds=2.2),
        Step("control24", "8  Closed loop 2024 (designations carried from 2023) / "
                          "2024 年严格管控闭环",
             ["control", str(y24),
              "--ledger", str(d / "resample_2024" / "strict_control_2024.csv"),
              "--measures", str(d / "resample_2024" / "measures_2024.csv"), "-o", str(y24),
              *ow],
             after=(*_LOOP23, "classify24"), seconds=1.1),
        Step("rate24", "8b Safe-utilisation rate 2024 / 2024 年安全利用率",
             ["rate", str(y24), "--measures", str(d / "resample_2024" / "measures_2024.csv"),
              "--closed-loop", str(d / "resample_2024" / "strict_control_2024.csv"),
              "-o", str(y24), *ow],
             after=(*_LOOP23, "classify24"), seconds=1.0),
        Step("diff", "9  What changed 2023 -> 2024 / 类别变化对比",
             ["diff", "R0001", "R0002", "--workspace", ws,
              "--measures-a", str(d / "measures_2023.csv"),
              "--measures-b", str(d / "resample_2024" / "measures_2024.csv"),
              "--closed-loop-a", str(d / "strict_control_2023.csv"),
              "--closed-loop-b", str(d / "resample_2024" / "strict_control_2024.csv"),
              "-o", str(o / "diff_2023_2024"), *ow],
             after=(*_LOOP23, "classify24", "control24"), seconds=2.0),
        Step("map_diff", "9b Change map 2023 -> 2024 / 类别变化图",
             ["map", str(y24 / f.CLASSIFICATION), "--diff", str(o / "diff_2023_2024"),
              "--townships", towns, "-o", str(maps / "demo_diff.html"), *ow],
             after=("classify24", "diff"), seconds=0.5, **_MAP23),
    ]


@click.command("demo")
@click.option("--data", "data", type=click.Path(file_okay=False), default="data/demo",
              show_default=True, help="Folder of the bundled demo county.")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False),
              default="demo_output", show_default=True, help="Output folder.")
@click.option("--maps", "maps", type=click.Path(file_okay=False), default="maps",
              show_default=True, help="Folder for the HTML maps.")
@jobs_option
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier demo run.")
@click.pass_context
def command(ctx, data, output, maps, jobs, overwrite):
    """Run the whole chain on the bundled demo county (synthetic data).

    在内置示范县（合成数据）上运行完整流程：分类、安全利用率、稀疏标记、布点、地图、报告、动态调整。
    """
    from farmland.cli.parallel import CHAIN_IMPORTS, Worker, default_jobs, global_flags

    data, out, maps_dir = Path(data), Path(output), Path(maps)
    missing = [f for f in DEMO_FILES if not (data / f).exists()]
    if missing:
        raise InputError("demo data not found", file=data / missing[0],
                         fix="run 'farmland demo' from the root of the farmland repository "
                             "(where data/demo/ is) or pass --data PATH/TO/data/demo")
    jobs = default_jobs(jobs)
    flags = global_flags(ctx.obj.get("quiet", False))
    # the worker starts before this process imports the chain: it compiles the kriging
    # kernels first (kernels.warm_up), so that a first run after installing finds them
    # compiled when the 2023 classification needs them
    worker = Worker(flags, CHAIN_IMPORTS) if jobs > 1 else None
    try:
        _run(ctx, data, out, maps_dir, jobs, flags, overwrite, worker)
    finally:
        # told to end, not waited for: idle after the graph (run_graph waits for its step),
        # else still warming up (a refusal before the graph); at exit multiprocessing ends it
        if worker is not None:
            worker.close(wait=False)


def _run(ctx, data: Path, out: Path, maps_dir: Path, jobs: int, flags: list[str],
         overwrite: bool, worker) -> None:
    """The demo's graph (``worker``: the second process, or ``None`` with one job), then
    its closing summary and truth checks."""
    from farmland.cli.parallel import processes, run_graph, run_here
    from farmland.cli.run import print_closing_summary
    from farmland.io.read_cache import reusing_reads
    from farmland.io.write import refuse_existing
    from farmland.runs.folder import WORKSPACE

    workspace = out / WORKSPACE
    refuse_existing([workspace], overwrite=overwrite)
    workspace.unlink(missing_ok=True)   # the demo starts its run history afresh
    out.mkdir(parents=True, exist_ok=True)
    maps_dir.mkdir(parents=True, exist_ok=True)
    steps = demo_steps(data, out, maps_dir, overwrite=overwrite)
    started = time.perf_counter()
    with reusing_reads():  # the steps read the same classification.gpkg: once is enough
        # _show is looked up here, so that benchmarks/demo_timeline.py can record the steps
        failed = run_graph(steps, run_here=lambda s: run_here(ctx, s, flags), show=_show,
                           jobs=jobs, worker=worker)
        if failed is not None:
            key, code = failed
            title = next((s.title for s in steps if s.key == key), key)
            click.secho(f"demo stopped at step: {title}", fg="red", err=True)
            ctx.exit(code)
        click.secho(f"\nDemo finished in {time.perf_counter() - started:.0f} s "
                    f"({processes(jobs)}). Outputs: {out}/ (2023/, 2024/, diff_2023_2024/)",
                    bold=True)
        # the summary and the truth checks read the classifications the steps read
        print_closing_summary(out / "2023", maps=[
            maps_dir / f"demo_{name}.html"
            for name in ("county", "sampling", "dongyan", "control", "sources", "diff")])
        truth = data / "truth" / "expected_classes.csv"
        if truth.is_file():
            for year in ("2023", "2024"):
                click.echo(truth_line(out / year, truth, year))
        if (data / "truth" / "source_areas.gpkg").is_file():
            click.echo(source_truth_line(out / "2023", data / "truth"))


def truth_line(run: Path, truth: Path, year: str) -> str:
    """How the run's classes compare with the demo's truth file (area-weighted): the
    synthetic county knows every parcel's true class, a real county does not."""
    import pandas as pd

    from farmland.runs.folder import load_classification
    from farmland.validation import metrics as m

    parcels = load_classification(run)[0]
    true = pd.read_csv(truth, dtype={"BSM": str}, encoding="utf-8-sig")
    cls = true.set_index("BSM")["expected_class"].reindex(parcels["parcel_id"].astype(str))
    known = cls.notna().to_numpy()
    t, p = cls.to_numpy()[known], parcels["final_class"].astype("Float64").to_numpy()[known]
    w = parcels["area_mu"].to_numpy(float)[known]
    true3 = float(w[t == 3].sum())
    hit3 = float(w[(t == 3) & (p == 3)].sum())
    return (f"真值核对 truth check {year} (synthetic demo, {truth.name}): agreement "
            f"{100 * m.agreement(t, p, w):.1f} % of classified area; class-3 recall "
            f"{100 * m.class3_recall(t, p, w):.1f} % ({hit3:,.0f} of {true3:,.0f} 亩), "
            f"precision {100 * m.class3_precision(t, p, w):.1f} %; contaminated land called "
            f"class 1 {100 * m.contaminated_called_clean(t, p, w):.1f} %")


def source_truth_line(run: Path, truth: Path) -> str:
    """Whether each planted cause of the demo ranks first in its largest cluster
    (``truth/source_areas.gpkg``, ``truth/source_causes.csv``)."""
    import geopandas as gpd
    import pandas as pd

    from farmland.validation.source_truth import source_truth_check

    clusters = gpd.read_file(run / "sources.gpkg", layer="clusters")
    candidates = pd.read_csv(run / "candidates.csv", encoding="utf-8-sig")
    causes = pd.read_csv(truth / "source_causes.csv", encoding="utf-8-sig", dtype=str)
    areas = gpd.read_file(truth / "source_areas.gpkg", layer="areas")
    per, by_cause = source_truth_check(clusters, candidates, areas, causes)
    right = by_cause.loc[by_cause["largest_right"], "cause_id"].tolist()
    wrong = by_cause.loc[~by_cause["largest_right"], "cause_id"].tolist()
    share = per.loc[per["right"], "area_mu"].sum() / per["area_mu"].sum()
    return (f"成因核对 source check 2023 (synthetic demo, {truth.name}/source_areas.gpkg): the "
            f"true cause ranks first in the largest cluster of {len(right)} of "
            f"{len(by_cause)} planted causes ({', '.join(right)}"
            + (f"; not: {', '.join(wrong)}" if wrong else "")
            + f"); {100 * share:.1f} % of the area of {len(per)} clusters with a "
            "planted cause ranked right")
