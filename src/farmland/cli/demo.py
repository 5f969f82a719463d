"""``farmland demo``: the whole chain on the bundled demo county.

The demo runs the same subcommands an analyst would, and prints each command line
first, so the output doubles as a tutorial:

2023 classification → rate and gap → sparse-data flags and strict-control zones →
sampling plan → map → report; then the 2024 re-sampling (new soil and crop samples,
new measures) as a second run in the same workspace, its rate, and the diff of the
two runs.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from farmland.errors import InputError

DEMO_FILES = ("parcels.gpkg", "soil_samples.csv", "crop_samples.csv", "measures_2023.csv",
              "pollution_sources.geojson", "townships.gpkg",
              "resample_2024/soil_samples.csv", "resample_2024/crop_samples.csv",
              "resample_2024/measures_2024.csv", "strict_control_2023.csv", "grain_lots_2023.csv",
              "resample_2024/strict_control_2024.csv", "rivers.gpkg", "geology.gpkg",
              "wind_rose.csv")


def demo_steps(data: Path, out: Path, maps: Path, *, overwrite: bool) -> list[tuple[str, list[str]]]:
    """The demo as (title, argv) pairs of ``farmland`` subcommands."""
    from farmland.runs import folder as f

    d, o = data, out
    ws = str(o / f.WORKSPACE)
    ow = ["--overwrite"] if overwrite else []
    y23, y24 = o / "2023", o / "2024"
    soil23, crops23 = str(d / "soil_samples.csv"), str(d / "crop_samples.csv")
    common = ["--parcels", str(d / "parcels.gpkg"), "--parcels-layer", "DLTB",
              "--townships", str(d / "townships.gpkg"), "--crs", "EPSG:4545"]
    return [
        ("1  Classify 2023 (detailed survey) / 2023 年分类",
         ["classify", *common, "--samples", soil23, "--crops", crops23, "--workspace", ws,
          "--label", "2023 详查 detailed survey", "-o", str(y23), *ow]),
        ("2  Strict-control closed loop, product zones, grain lots / 严格管控闭环、管控区、粮食批次",
         ["control", str(y23), "--ledger", str(d / "strict_control_2023.csv"),
          "--measures", str(d / "measures_2023.csv"), "--lots", str(d / "grain_lots_2023.csv"),
          "-o", str(y23), *ow]),
        ("2b Safe-utilisation rate 2023 / 安全利用率",
         ["rate", str(y23), "--measures", str(d / "measures_2023.csv"),
          "--closed-loop", str(d / "strict_control_2023.csv"), "-o", str(y23), *ow]),
        ("2c Where the cadmium comes from / 污染成因排查",
         ["sources", str(y23), "--sources", str(d / "pollution_sources.geojson"),
          "--rivers", str(d / "rivers.gpkg"), "--geology", str(d / "geology.gpkg"),
          "--wind", str(d / "wind_rose.csv"), "--seed", "2023", "-o", str(y23), *ow]),
        ("3  Sparse data and strict-control zones / 数据稀疏与严格管控区",
         ["flag", str(y23), "--townships", str(d / "townships.gpkg"), "-o", str(y23), *ow]),
        ("4  Sampling plan / 加密采样布点",
         ["plan", str(y23), "--n", "60", "--sources", str(d / "pollution_sources.geojson"),
          "--seed", "2023", "-o", str(y23), *ow]),
        ("5  County map / 全县地图",
         ["map", str(y23 / f.CLASSIFICATION), "-o", str(maps / "demo_county.html"),
          "--layers", "parcels,samples,zones,sources,townships",
          "--rate-json", str(y23 / f.RATE_JSON), "--zones", str(y23 / f.FLAGS),
          "--sources", str(d / "pollution_sources.geojson"),
          "--townships", str(d / "townships.gpkg"), *ow]),
        ("5b Sampling map: flags, crops, planned points / 加密采样图",
         ["map", str(y23 / f.CLASSIFICATION), "-o", str(maps / "demo_sampling.html"),
          "--layers", "parcels,samples,crops,flags,plan,sources,townships",
          "--title", "加密采样需求与布点 Sampling needs and planned points",
          "--flags", str(y23 / f.FLAGS), "--plan", str(y23 / f.PLAN_GPKG),
          "--sources", str(d / "pollution_sources.geojson"),
          "--townships", str(d / "townships.gpkg"), *ow]),
        ("5c Township detail map / 乡镇详图",
         ["map", str(y23 / f.CLASSIFICATION), "-o", str(maps / "demo_dongyan.html"),
          "--township", "东岩乡", "--rate-json", str(y23 / f.RATE_JSON),
          "--zones", str(y23 / f.FLAGS), "--plan", str(y23 / f.PLAN_GPKG),
          "--sources", str(d / "pollution_sources.geojson"),
          "--townships", str(d / "townships.gpkg"), *ow]),
        ("5d Strict-control closed loop map / 严格管控闭环图",
         ["map", str(y23 / f.CLASSIFICATION), "--control", str(y23 / f.CONTROL_GPKG),
          "--townships", str(d / "townships.gpkg"), "-o", str(maps / "demo_control.html"),
          *ow]),
        ("5e Where the cadmium comes from: clusters and candidate sources / 污染成因图",
         ["map", str(y23 / f.CLASSIFICATION), "--causes", str(y23 / f.SOURCES_GPKG),
          "--sources", str(d / "pollution_sources.geojson"),
          "--townships", str(d / "townships.gpkg"), "-o", str(maps / "demo_sources.html"),
          *ow]),
        ("6  Report (Excel + HTML) / 报告",
         ["report", str(y23), "--county", "示范县", "-o", str(y23 / f.REPORT_DIR),
          *ow]),
        ("7  Classify 2024 with the re-sampling data / 2024 年动态调整",
         ["classify", *common, "--samples", soil23,
          "--samples", str(d / "resample_2024" / "soil_samples.csv"),
          "--crops", crops23, "--crops", str(d / "resample_2024" / "crop_samples.csv"),
          "--workspace", ws, "--label", "2024 加密 re-sampling", "-o", str(y24), *ow]),
        ("8  Closed loop 2024 (designations carried from 2023) / 2024 年严格管控闭环",
         ["control", str(y24), "--ledger", str(d / "resample_2024" / "strict_control_2024.csv"),
          "--measures", str(d / "resample_2024" / "measures_2024.csv"), "-o", str(y24), *ow]),
        ("8b Safe-utilisation rate 2024 / 2024 年安全利用率",
         ["rate", str(y24), "--measures", str(d / "resample_2024" / "measures_2024.csv"),
          "--closed-loop", str(d / "resample_2024" / "strict_control_2024.csv"),
          "-o", str(y24), *ow]),
        ("9  What changed 2023 -> 2024 / 类别变化对比",
         ["diff", "R0001", "R0002", "--workspace", ws,
          "--measures-a", str(d / "measures_2023.csv"),
          "--measures-b", str(d / "resample_2024" / "measures_2024.csv"),
          "-o", str(o / "diff_2023_2024"), *ow]),
        ("9b Change map 2023 -> 2024 / 类别变化图",
         ["map", str(y24 / f.CLASSIFICATION), "--diff", str(o / "diff_2023_2024"),
          "--townships", str(d / "townships.gpkg"), "-o", str(maps / "demo_diff.html"), *ow]),
    ]


@click.command("demo")
@click.option("--data", "data", type=click.Path(file_okay=False), default="data/demo",
              show_default=True, help="Folder of the bundled demo county.")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False),
              default="demo_output", show_default=True, help="Output folder.")
@click.option("--maps", "maps", type=click.Path(file_okay=False), default="maps",
              show_default=True, help="Folder for the HTML maps.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier demo run.")
@click.pass_context
def command(ctx, data, output, maps, overwrite):
    """Run the whole chain on the bundled demo county (synthetic data).

    在内置示范县（合成数据）上运行完整流程：分类、安全利用率、稀疏标记、布点、地图、报告、动态调整。
    """
    from farmland.cli import main
    from farmland.cli.run import global_flags, print_closing_summary
    from farmland.progress import step

    data, out, maps_dir = Path(data), Path(output), Path(maps)
    missing = [f for f in DEMO_FILES if not (data / f).exists()]
    if missing:
        raise InputError("demo data not found", file=data / missing[0],
                         fix="run 'farmland demo' from the root of the farmland repository "
                             "(where data/demo/ is) or pass --data PATH/TO/data/demo")
    from farmland.runs.folder import WORKSPACE

    workspace = out / WORKSPACE
    from farmland.io.read_cache import reusing_reads
    from farmland.io.write import refuse_existing

    refuse_existing([workspace], overwrite=overwrite)
    workspace.unlink(missing_ok=True)   # the demo starts its run history afresh
    out.mkdir(parents=True, exist_ok=True)
    maps_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with reusing_reads():  # the steps read the same classification.gpkg: once is enough
        for title, argv in demo_steps(data, out, maps_dir, overwrite=overwrite):
            click.secho(f"\n== {title}", bold=True)
            click.secho("$ farmland " + shlex.join(argv), fg="cyan")
            t0 = time.perf_counter()
            with step(title.split("/")[0].strip()):
                code = main.main(args=[*global_flags(ctx.obj.get("quiet", False)), *argv],
                                 prog_name="farmland", standalone_mode=False, obj=ctx.obj)
            if code:  # the step printed its error already
                click.secho(f"demo stopped at step: {title}", fg="red", err=True)
                ctx.exit(code)
            click.echo(f"({time.perf_counter() - t0:.1f} s)")
        click.secho(f"\nDemo finished in {time.perf_counter() - started:.0f} s. Outputs: "
                    f"{out}/ (2023/, 2024/, diff_2023_2024/)", bold=True)
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
