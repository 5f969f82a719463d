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
@click.option("--townships", type=click.Path(exists=True), default=None,
              help="Township polygons or a table of XZQDM/XZQMC: names the parcels' townships "
                   "(by code, else by location). Without it: the parcels' XZQMC, else codes.")
@click.option("--samples", "samples", required=True, multiple=True, type=click.Path(exists=True),
              help="Soil samples (points or CSV/XLSX with coordinates). Repeat for several files.")
@click.option("--crops", "crops", multiple=True, type=click.Path(exists=True),
              help="Crop samples (optional). Repeat for several files.")
@click.option("--rules", "rules", type=click.Path(exists=True), default=None,
              help="Rules profile TOML (default: built-in county_practice).")
@click.option("--interpolator", type=click.Choice(["kriging", "idw"]), default=None,
              help="Interpolation for parcels without samples (default from the rules).")
@click.option("--outliers", type=click.Choice(["flag", "exclude", "keep"]), default="flag",
              show_default=True,
              help="Suspect soil values (e.g. 镉 45 for 0.45): flag = kept for their own sample, "
                   "left out of surfaces and variograms; exclude = removed; keep = reported "
                   "only. A high value whose sample has another metal high too is a hot "
                   "spot, kept (rules: [outliers] corroboration). Always listed in "
                   "outliers.csv.")
@click.option("--units", default="parcel", show_default=True, metavar="parcel|village|township|FILE",
              help="Evaluation unit (评价单元) of the point majority, the 80 %/50 % checks and the "
                   "crop adjustment: each parcel alone, village × land use, township × land use, "
                   "or a units file (unit polygons, or a CSV/XLSX of parcel id → unit id). "
                   "A unit holding soil samples gives its class to all its parcels; parcels "
                   "stay the reporting grain (column unit_id).")
@click.option("--mapping", type=click.Path(exists=True), default=None,
              help="Column-mapping file (TOML/JSON: {their_name = canonical_name}).")
@click.option("--workspace", type=click.Path(dir_okay=False), default=None,
              help="Run-history GeoPackage to append this run to.")
@click.option("--label", default=None, help="Label of the run in the workspace.")
@click.option("--since", default=None, metavar="RUN",
              help="Previous run (id in --workspace) whose variograms this run may reuse. "
                   "Default: the latest run there with the same parcels and rules.")
@click.option("--variograms", type=click.Choice(["auto", "refit", "reuse"]), default="auto",
              show_default=True,
              help="auto: reuse the previous run's variograms where few samples changed "
                   "(<= 10 % of the values each was fitted on, [variograms] in the rules) "
                   "and a refit would move it by noise only; refit: fit anew; reuse: take "
                   "them as they are (needs a previous run). Without --workspace: fitted.")
@click.option("--full", is_flag=True,
              help="Classify every parcel again. Default: when the previous run (--since, "
                   "else the latest in --workspace) is the same job and its variograms are "
                   "reused, only the parcels the changed samples can reach are recomputed "
                   "(same result as a full run; recorded in manifest.json).")
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
              default=None,
              help="A config file (as written by 'farmland run' into the run folder: "
                   "config.resolved.toml) to record in manifest.json.")
@crs_option
@output_dir_option()
@overwrite_option
@click.pass_context
def command(ctx, parcels, parcels_layer, townships, outliers, samples, crops, rules, interpolator, units, mapping, workspace,
            label, since, variograms, full, seed, rasters, raster_cell, scheduler, run_config, crs,
            output, overwrite):
    """Classify every parcel: priority protection (1), safe utilisation (2), strict control (3).

    按 GB 15618-2018 将耕地图斑划为优先保护类、安全利用类、严格管控类，并给出依据。

    Writes OUTPUT/classification.gpkg (layers parcels, samples, crops), OUTPUT/summary.csv
    and OUTPUT/manifest.json, and prints the class area per township.
    """
    from farmland.runs.pipeline import (
        ClassificationInputs,
        check_output,
        classify_run,
        write_classification,
    )

    check_output(output, overwrite=overwrite)  # refuse before any work
    if workspace:
        _check_writable(Path(workspace))
    output_existed = Path(output).exists()
    if (since or variograms == "reuse") and not workspace:
        raise click.UsageError("--since and --variograms reuse need --workspace, the run "
                               "history that holds the earlier run")
    if scheduler:  # a missing dask extra is one line now, not a failure after the work
        from farmland.classify.distributed import require_dask

        require_dask()

    inputs = ClassificationInputs(
        parcels=Path(parcels), samples=[Path(s) for s in samples],
        crops=[Path(c) for c in crops] or None, crs=crs, parcels_layer=parcels_layer,
        townships=Path(townships) if townships else None, outliers=outliers,
        mapping=Path(mapping) if mapping else None, rules=Path(rules) if rules else None,
        interpolator=interpolator, seed=seed, units=units, extra=_run_config(run_config),
        workspace=Path(workspace) if workspace else None, since=since, variograms=variograms,
        output=Path(output), full=full)
    result = classify_run(inputs, scheduler=scheduler)
    write_classification(result, output, overwrite=overwrite)
    if rasters:
        from farmland.geostats.quality import write_rasters
        from farmland.runs.folder import RASTERS_DIR
        from farmland.standards import load_standard

        folder = Path(output) / RASTERS_DIR
        folder.mkdir(exist_ok=True)
        write_rasters(folder, result.samples, result.parcels, result.surfaces,
                      standard=load_standard(), cell_size=raster_cell, overwrite=overwrite)
    if workspace:
        from farmland.errors import OutputError
        from farmland.runs.workspace import Workspace
        try:
            from farmland.runs.folder import read_manifest

            ws = Workspace(workspace)
            # a rerun with --overwrite into the same folder replaces its run (same id)
            replaces = ws.run_of_output(output) if overwrite else None
            run_id = ws.add_run(result.parcels, crops=result.crops,
                                manifest=read_manifest(output), label=label, output=output,
                                replaces=replaces, differences=result.differences)
            _record_run(output, run_id, workspace)
        except OSError as exc:
            reason = exc.reason if isinstance(exc, OutputError) else exc.strerror or str(exc)
            if not output_existed:   # the folder is this run's: no unrecorded run is left
                import shutil

                shutil.rmtree(output, ignore_errors=True)
                raise OutputError(workspace, f"{reason}; the run was not added, and its "
                                             f"outputs in {output} were removed") from exc
            raise OutputError(workspace, f"{reason}; the classification outputs in {output} "
                                         "were written, the run was not added: run again with "
                                         "--overwrite once the workspace can be written"
                              ) from exc
        click.echo(f"run {run_id} {'replaced in' if replaces else 'added to'} {workspace}")
    print_class_table(result.summary)  # exact areas: the table rounds them once
    from farmland.runs.folder import CLASSIFICATION

    click.echo(f"outputs: {Path(output) / CLASSIFICATION}")


def _check_writable(workspace: Path) -> None:
    """Refuse before any work a workspace that cannot be written (the run is added by
    writing the file, or a copy of it renamed into place, in its folder: the output
    folders' own check, :func:`farmland.io.write.refuse_read_only`)."""
    import os

    from farmland.errors import OutputError
    from farmland.io.write import refuse_read_only

    if workspace.exists() and not os.access(workspace, os.W_OK):
        raise OutputError(workspace, "the workspace file is read-only")
    refuse_read_only(workspace.parent)


def _record_run(output: str, run_id: str, workspace: str) -> None:
    """Note the workspace run id in the run folder's manifest (for report titles, diffs)."""
    import json

    from farmland.io.write import atomic_write
    from farmland.runs import folder

    manifest = folder.read_manifest(output)
    manifest["run"] = {"id": run_id, "workspace": folder.portable_path(workspace, output)}
    with atomic_write(Path(output) / folder.MANIFEST, overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str),
                       encoding="utf-8")


def _run_config(path: str | None) -> dict:
    """The resolved 'farmland run' config, recorded under manifest parameters."""
    if not path:
        return {}
    from farmland.cli.config import read_resolved
    return {"run_config": read_resolved(path)}
