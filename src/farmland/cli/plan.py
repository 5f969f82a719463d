"""``farmland plan``: new soil sampling points for a field team."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from farmland.cli import output_dir_option, overwrite_option

#: what backs the expected figures (benchmarks/README.md "The printed effect under the
#: calibrated truth"), with the calibrated class probabilities and without them
EFFECT_CAPTION = ("预计值由克里金方差更新算得（无需新测值），以校准后的类别概率（p_calibrated_*）为真值分布。"
                  "验证场景（50 个县）中，uncertainty、combined 与 coverage 布点实际减少的错分面积均约为"
                  "预计的 0.9 倍。 Expected figures: kriging-variance update, no values needed, "
                  "counted against the calibrated class probabilities (p_calibrated_*). On the "
                  "validation harness (50 counties) uncertainty, combined and coverage plans each "
                  "removed about 0.9× the predicted misclassified area.")
MODEL_CAPTION = ("预计值由克里金方差更新算得（无需新测值），以模型类别概率（p_class_*）为真值分布（本次分类未做"
                 "校准）。验证场景（50 个县）中，uncertainty 布点实际减少的错分面积约为预计的 1.5 倍，"
                 "combined 与 coverage 约 1.6 倍。 Expected figures: kriging-variance update, no "
                 "values needed, counted against the model's class probabilities (p_class_*; "
                 "this run has no calibrated ones). On the validation harness (50 counties) "
                 "uncertainty plans removed about 1.5× the predicted misclassified area, "
                 "combined and coverage plans about 1.6×.")


def print_effect(effect: pd.DataFrame, *, calibrated: bool = True) -> None:
    """Before → after figures per township and county (rich table, stdout); ``calibrated``:
    whether the expected figures count against calibrated class probabilities."""
    from rich.markup import escape
    from rich.table import Table

    from farmland.cli.output import console

    table = Table(title="布点效果 / Effect of the plan (before → after)", caption=EFFECT_CAPTION if calibrated else MODEL_CAPTION)
    for i, title in enumerate(["乡镇 Township", "新点 New", "平均距离 Mean dist (m)",
                               "95% 距离 P95 dist (m)", "空白网格 Empty cells",
                               "预计错分面积 Expected misclassified (亩)",
                               "预计改类面积 Expected class change (亩)"]):
        table.add_column(title, justify="left" if i == 0 else "right", overflow="fold")
    last = len(effect) - 1
    for i, r in enumerate(effect.itertuples(index=False)):
        table.add_row(escape(str(r.township)), f"{r.n_new}",
                      f"{r.mean_dist_before_m:,.0f} → {r.mean_dist_after_m:,.0f}",
                      f"{r.p95_dist_before_m:,.0f} → {r.p95_dist_after_m:,.0f}",
                      f"{r.uncovered_cells_before} → {r.uncovered_cells_after}",
                      f"{r.misclassified_mu_before:,.1f} → {r.misclassified_mu_after:,.1f}",
                      f"{r.class_change_mu:,.1f}",
                      style="bold" if i == last else None, end_section=i == last - 1)
    console.print(table)


def _read_polygons(path: str, parcels):
    """Exclusion polygons from any vector file, in the parcels' CRS."""
    import pyogrio

    from farmland.errors import CRSError
    from farmland.io.formats import choose_layer

    frame = pyogrio.read_dataframe(path, layer=choose_layer(Path(path), None, ()))
    if frame.crs is None:
        raise CRSError("exclusion polygons have no CRS", file=path,
                       fix="save the file with its coordinate system (.prj / GeoPackage)")
    return frame.to_crs(parcels.crs)


@click.command("plan")
@click.argument("classification", type=click.Path(exists=True))
@click.option("--n", "n", default=60, show_default=True, help="Number of new points.")
@click.option("--mode", type=click.Choice(["combined", "coverage", "uncertainty", "sources",
                                           "random"]),
              default="combined", show_default=True, help="How points are chosen.")
@click.option("--min-spacing", default=250.0, show_default=True,
              help="Minimum distance (m) between points and to existing samples.")
@click.option("--exclusions", type=click.Path(exists=True), default=None,
              help="Polygons where no point may go (any vector format).")
@click.option("--sources", type=click.Path(exists=True), default=None,
              help="Pollution sources (points; name, industry, metals).")
@click.option("--range", "range_m", type=float, default=None,
              help="Range (m) of an exponential variogram for the kriging-variance update "
                   "(default: the variogram the classification fitted for the main driving "
                   "metal, recorded in manifest.json; 1000 m without one).")
@click.option("--sample-cv", type=click.FloatRange(0, 5), default=None,
              help="CV of one new sample against its parcel's mean soil (lab repeatability "
                   "from duplicate samples and within-parcel variation); the error used is "
                   "the variogram's nugget, at least this. Default: the classification's "
                   "rules, [points] error_cv (0.2 in the shipped profile).")
@click.option("--target-density", type=float, default=None,
              help="Samples per km² of farmland to reach (replaces --n).")
@click.option("--coverage-area", type=click.Choice(["flagged", "all"]), default="flagged",
              show_default=True, help="Spread coverage points over flagged areas or all farmland.")
@click.option("--flags", "flags_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="flags.gpkg written by 'farmland flag' for this classification: coverage "
                   "points go into its flagged areas (default: flags computed here with "
                   "'farmland flag' defaults).")
@click.option("--seed", default=0, show_default=True, help="Random seed (coverage start).")
@output_dir_option()
@overwrite_option
def command(classification, n, mode, min_spacing, exclusions, sources, range_m, sample_cv,
            target_density, coverage_area, flags_file, seed, output, overwrite):
    """Plan new soil sampling points inside farmland parcels.

    在耕地图斑内布设加密采样点位（CSV、GPX、KML），并给出预计效果。

    Reads CLASSIFICATION (classification.gpkg or its folder); writes OUTPUT/plan.csv
    (UTF-8 with BOM), plan.gpx, plan.kml, plan.gpkg and plan_effect.csv, and prints the
    before/after figures.
    """
    from farmland.io.readers import read_sources
    from farmland.io.write import atomic_folder
    from farmland.runs import folder
    from farmland.runs.folder import load_classification
    from farmland.sampling.effect import plan_effect
    from farmland.sampling.field_export import write_plan
    from farmland.sampling.flag_areas import read_flagged_area
    from farmland.sampling.flags import flag_sparse
    from farmland.sampling.planner import plan_sampling

    out = Path(output)
    outputs = (*folder.PLAN_FILES, folder.PLAN_EFFECT)
    with atomic_folder(out, overwrite=overwrite, expected=outputs) as stage:
        parcels, samples, crops = load_classification(classification)
        src = read_sources(sources, target_crs=parcels.crs) if sources else None
        excl = _read_polygons(exclusions, parcels) if exclusions else None
        if coverage_area == "all":
            flags = None
        elif flags_file:   # the flags `farmland flag` wrote (with its settings)
            flags = read_flagged_area(flags_file, parcels)
        else:
            flags = flag_sparse(parcels, samples, crops=crops)
        variogram = None if range_m is not None else fitted_variogram(classification, parcels)
        plan, planned = plan_sampling(
            parcels, samples, n=n, mode=mode, min_spacing=min_spacing, exclusions=excl,
            sources=src, flags=flags, variogram_range=range_m, variogram=variogram,
            rules=run_rules(classification), sample_error_cv=sample_cv, seed=seed,
            target_density=target_density, return_effect=True)
        effect = plan_effect(parcels, samples, plan, planned=planned)
        write_plan(plan, stage, stem=folder.PLAN_STEM)
        effect.to_csv(stage / folder.PLAN_EFFECT, index=False, encoding="utf-8-sig")
    counts = plan["mode"].value_counts()
    click.echo(f"{len(plan)} point(s): " + ", ".join(f"{m} {c}" for m, c in counts.items()))
    print_effect(effect, calibrated=bool(
        "p_calibrated_1" in parcels and parcels["p_calibrated_1"].notna().any()))
    click.echo(f"outputs: {out}")


def fitted_variogram(classification: str, parcels):
    """The variogram the classification run fitted for the metal driving the most class-2/3
    area (Cd when none), from its manifest.json; ``None`` when there is none (IDW run)."""
    from farmland.runs.folder import fitted_models, read_manifest
    from farmland.sampling.expected import main_variogram

    return main_variogram(fitted_models(read_manifest(classification)), parcels)


def run_rules(classification: str):
    """The rules values the classification ran with (manifest.json), else ``None`` (the
    shipped profile)."""
    from farmland.runs.folder import read_manifest

    return (read_manifest(classification).get("rules") or {}).get("values") or None
