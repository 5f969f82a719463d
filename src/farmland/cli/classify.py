"""``farmland classify``: parcels + soil (+ crop) samples -> classes with reasons."""

from __future__ import annotations

from pathlib import Path

import click

from farmland.cli import crs_option, output_dir_option, overwrite_option
from farmland.cli.output import print_class_table


@click.command("classify")
@click.option("--parcels", "parcels", required=True, type=click.Path(exists=True),
              help="Farmland parcels (GeoPackage, Shapefile, FileGDB, GeoJSON, GeoParquet).")
@click.option("--parcels-layer", default=None, help="Layer name in a GeoPackage/FileGDB (e.g. DLTB).")
@click.option("--samples", "samples", required=True, multiple=True, type=click.Path(exists=True),
              help="Soil samples (points or CSV/XLSX with coordinates). Repeat for several files.")
@click.option("--crops", "crops", multiple=True, type=click.Path(exists=True),
              help="Crop samples (optional). Repeat for several files.")
@click.option("--rules", "rules", type=click.Path(exists=True), default=None,
              help="Rules profile TOML (default: built-in county_practice).")
@click.option("--interpolator", type=click.Choice(["kriging", "idw"]), default=None,
              help="Interpolation for parcels without samples (default from the rules).")
@click.option("--mapping", type=click.Path(exists=True), default=None,
              help="Column-mapping file (TOML/JSON: {their_name = canonical_name}).")
@click.option("--workspace", type=click.Path(dir_okay=False), default=None,
              help="Run-history GeoPackage to append this run to.")
@click.option("--label", default=None, help="Label of the run in the workspace.")
@click.option("--seed", default=0, show_default=True, help="Random seed (variogram pair sampling).")
@click.option("--rasters", is_flag=True,
              help="Also write GeoTIFFs (OUTPUT/rasters/): predicted value, kriging SD and "
                   "P(exceeding the screening value) per element.")
@click.option("--raster-cell", default=100.0, show_default=True, type=float,
              help="Cell size of --rasters (m).")
@click.option("--scheduler", default=None, metavar="local|tcp://HOST:PORT",
              help="Classify parcels in partitions on dask: 'local' (2-worker LocalCluster) or "
                   "a scheduler address. Default: in this process. Needs the 'dask' extra.")
@click.option("--run-config", "run_config", type=click.Path(exists=True, dir_okay=False),
              default=None, hidden=True,
              help="Resolved 'farmland run' config to record in manifest.json.")
@crs_option
@output_dir_option()
@overwrite_option
@click.pass_context
def command(ctx, parcels, parcels_layer, samples, crops, rules, interpolator, mapping, workspace,
            label, seed, rasters, raster_cell, scheduler, run_config, crs, output, overwrite):
    """Classify every parcel: priority protection (1), safe utilisation (2), strict control (3).

    Writes OUTPUT/classification.gpkg (layers parcels, samples, crops), OUTPUT/summary.csv
    and OUTPUT/manifest.json, and prints the class area per township.
    """
    from farmland.pipeline import (
        ClassificationInputs,
        check_output,
        classify_run,
        write_classification,
    )

    check_output(output, overwrite=overwrite)  # refuse before any work

    inputs = ClassificationInputs(
        parcels=Path(parcels), samples=[Path(s) for s in samples],
        crops=[Path(c) for c in crops] or None, crs=crs, parcels_layer=parcels_layer,
        mapping=Path(mapping) if mapping else None, rules=Path(rules) if rules else None,
        interpolator=interpolator, seed=seed, extra=_run_config(run_config))
    result = classify_run(inputs, scheduler=scheduler)
    write_classification(result, output, overwrite=overwrite)
    if rasters:
        from farmland.geostats import write_rasters
        from farmland.standards import load_standard

        folder = Path(output) / "rasters"
        folder.mkdir(exist_ok=True)
        write_rasters(folder, result.samples, result.parcels, result.surfaces,
                      standard=load_standard(), cell_size=raster_cell, overwrite=overwrite)
    if workspace:
        from farmland.errors import OutputError
        from farmland.workspace import Workspace
        try:
            run_id = Workspace(workspace).add_run(result.parcels, crops=result.crops,
                                                  manifest=result.manifest, label=label)
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(workspace, f"{exc.strerror or exc}; the classification outputs "
                                         f"in {output} were written, the run was not added"
                              ) from exc
        click.echo(f"run {run_id} added to {workspace}")
    print_class_table(result.summary)
    click.echo(f"outputs: {Path(output) / 'classification.gpkg'}")


def _run_config(path: str | None) -> dict:
    """The resolved 'farmland run' config, recorded under manifest parameters."""
    if not path:
        return {}
    from farmland.config import read_resolved
    return {"run_config": read_resolved(path)}
