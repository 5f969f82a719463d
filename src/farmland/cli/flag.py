"""``farmland flag``: sparse data, uncertain parcels and strict-control zones."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from farmland.cli import output_dir_option, overwrite_option


def print_flag_summary(summary: pd.DataFrame) -> None:
    """Per-township flag counts (rich table, stdout), county row last."""
    from rich.markup import escape
    from rich.table import Table

    from farmland.cli.output import console

    cols = [("township", "乡镇\nTown"), ("farmland_km2", "耕地\nkm²"),
            ("n_samples", "点位\nPts"), ("density_per_km2", "密度\n/km²"),
            ("empty_cells", "空白网格\nEmpty"), ("thin_zones", "连片区\nZones"),
            ("uncertain_parcels", "不确定\nUncert."),
            ("crop_exceedance_class1", "一类超标\nCrop"), ("unclassified", "未分类\nUncl.")]
    table = Table(title="加密采样需求 / Sampling needs by township")
    for i, (_, title) in enumerate(cols):
        table.add_column(title, justify="left" if i == 0 else "right", overflow="fold")
    last = len(summary) - 1
    for i, row in enumerate(summary.itertuples(index=False)):
        cells = []
        for col, _ in cols:
            v = getattr(row, col)
            cells.append(escape(str(v)) if col == "township" else
                         f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
        if row.sparse:
            cells[3] = f"[red]{cells[3]}[/red]"
        table.add_row(*cells, style="bold" if i == last else None, end_section=i == last - 1)
    console.print(table)


@click.command("flag")
@click.argument("classification", type=click.Path(exists=True))
@click.option("--townships", type=click.Path(exists=True), default=None,
              help="Township boundaries (polygons) for the sparse-township layer.")
@click.option("--cell-size", default=1000.0, show_default=True, help="Grid cell side (m).")
@click.option("--min-density", default=1.0, show_default=True,
              help="Minimum samples per km² of farmland in a township.")
@click.option("--min-zone-samples", default=3, show_default=True,
              help="Minimum samples in a contiguous class-3/class-2 zone.")
@click.option("--zone-gap", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Parcels closer than this (m) form one contiguous zone (ditches and field "
                   "roads between land-survey parcels are 5-20 m wide).")
@click.option("--probability-threshold", default=0.2, show_default=True,
              help="Probability (or area share) of another class that makes a parcel uncertain.")
@click.option("--margin", default=0.1, show_default=True,
              help="Relative margin around a threshold (0.1 = ±10 %).")
@output_dir_option()
@overwrite_option
def command(classification, townships, cell_size, min_density, min_zone_samples, zone_gap,
            probability_threshold, margin, output, overwrite):
    """Flag where soil data are sparse or classes uncertain, and list strict-control zones.

    标记土壤点位稀疏、类别不确定的区域，列出严格管控类连片区。

    Reads CLASSIFICATION (classification.gpkg or its folder); writes OUTPUT/flags.gpkg
    (one layer per flag plus 'zones') and OUTPUT/flag_summary.csv, and prints the
    per-township summary.
    """
    from farmland.io.readers import read_townships
    from farmland.io.write import csv_writer, refuse_existing, write_gpkg_layers, write_outputs
    from farmland.runs import folder
    from farmland.runs.folder import load_classification
    from farmland.sampling.flags import SUMMARY_HEADERS, flag_sparse
    from farmland.sampling.zones import strict_control_zones

    out = Path(output)
    refuse_existing((out / n for n in folder.FLAG_FILES), overwrite=overwrite)
    parcels, samples, crops = load_classification(classification)
    towns = read_townships(townships, target_crs=parcels.crs) if townships else None
    result = flag_sparse(parcels, samples, crops=crops, townships=towns, cell_size=cell_size,
                         min_density_per_km2=min_density, min_zone_samples=min_zone_samples,
                         zone_gap=zone_gap,
                         probability_threshold=probability_threshold, margin=margin)
    zones = strict_control_zones(parcels, samples, tolerance=zone_gap)
    targets = write_outputs(out, {
        folder.FLAGS: lambda p: write_gpkg_layers(p, {**result.layers(), "zones": zones}),
        folder.FLAG_SUMMARY: csv_writer(result.summary.rename(columns=SUMMARY_HEADERS)),
    }, overwrite=overwrite)
    print_flag_summary(result.summary)
    click.echo(f"strict-control zone candidates: {len(zones)} "
               f"({zones['area_mu'].sum():,.1f} 亩)")
    click.echo(f"outputs: {', '.join(str(p) for p in targets.values())}")
