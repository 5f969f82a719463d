"""``farmland flag``: sparse data, uncertain parcels and strict-control zones."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from farmland.cli import output_dir_option, overwrite_option


def load_classification(path: str | Path):
    """Parcels, soil samples and crop samples (with geometry) of a classification.gpkg.

    ``path`` may also be the folder holding ``classification.gpkg``. Samples and crops
    are ``None`` when the file has no such layer.
    """
    import pyogrio

    from farmland.workspace import read_classification

    path = Path(path)
    if path.is_dir():
        path = path / "classification.gpkg"
    parcels, _, _ = read_classification(path)
    layers = {str(name) for name in pyogrio.list_layers(path)[:, 0]}
    samples = pyogrio.read_dataframe(path, layer="samples") if "samples" in layers else None
    crops = pyogrio.read_dataframe(path, layer="crops") if "crops" in layers else None
    return parcels, samples, crops


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
@click.option("--probability-threshold", default=0.2, show_default=True,
              help="Probability (or area share) of another class that makes a parcel uncertain.")
@click.option("--margin", default=0.1, show_default=True,
              help="Relative margin around a threshold (0.1 = ±10 %).")
@output_dir_option()
@overwrite_option
def command(classification, townships, cell_size, min_density, min_zone_samples,
            probability_threshold, margin, output, overwrite):
    """Flag where soil data are sparse or classes uncertain, and list strict-control zones.

    Reads CLASSIFICATION (classification.gpkg or its folder); writes OUTPUT/flags.gpkg
    (one layer per flag plus 'zones') and OUTPUT/flag_summary.csv, and prints the
    per-township summary.
    """
    from farmland.errors import OutputExistsError
    from farmland.flags import SUMMARY_HEADERS, flag_sparse
    from farmland.io import atomic_write, read_townships, write_gpkg_layers
    from farmland.zones import strict_control_zones

    out = Path(output)
    targets = [out / "flags.gpkg", out / "flag_summary.csv"]
    for path in targets:
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
    parcels, samples, crops = load_classification(classification)
    towns = read_townships(townships, target_crs=parcels.crs) if townships else None
    result = flag_sparse(parcels, samples, crops=crops, townships=towns, cell_size=cell_size,
                         min_density_per_km2=min_density, min_zone_samples=min_zone_samples,
                         probability_threshold=probability_threshold, margin=margin)
    zones = strict_control_zones(parcels, samples)
    write_gpkg_layers(targets[0], {**result.layers(), "zones": zones}, overwrite=overwrite)
    with atomic_write(targets[1], overwrite=overwrite) as tmp:
        result.summary.rename(columns=SUMMARY_HEADERS).to_csv(tmp, index=False,
                                                              encoding="utf-8-sig")
    print_flag_summary(result.summary)
    click.echo(f"strict-control zone candidates: {len(zones)} "
               f"({zones['area_mu'].sum():,.1f} 亩)")
    click.echo(f"outputs: {targets[0]}, {targets[1]}")
