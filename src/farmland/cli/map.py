"""``farmland map``: a classification GeoPackage -> one self-contained HTML map; with
``--diff``, the changed parcels of ``farmland diff`` coloured by class flow; with
``--control``, the closed loop of the class-3 parcels and the product control zones; with
``--causes``, the contaminated-land clusters of ``farmland sources`` and their candidate
sources."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from farmland.cli import crs_option, overwrite_option

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: overlays read from the classification GeoPackage (when it has the layer) or a file
OVERLAYS = ("samples", "crops", "zones", "flags", "plan", "sources", "townships", "outliers")
ALL_LAYERS = ("parcels", *OVERLAYS)
#: layers of a change map (--diff) unless --layers says otherwise
DIFF_LAYERS = ("parcels", "townships")
#: layers read from the control.gpkg of 'farmland control' (--control)
CONTROL_KEYS = ("loop", "product_zones")
#: layers of a closed-loop map (--control) unless --layers says otherwise
CONTROL_LAYERS = ("parcels", "townships", *CONTROL_KEYS)
#: columns each closed-loop layer must have
CONTROL_COLUMNS = {"loop": ("parcel_id", "loop_status"), "product_zones": ("zone_id",)}
#: layers read from the sources.gpkg of 'farmland sources' (--causes)
CAUSE_KEYS = ("clusters", "candidate_links", "hotspots", "confirm")
#: layers of a map of the contamination sources (--causes) unless --layers says otherwise
CAUSES_LAYERS = ("parcels", *CAUSE_KEYS, "sources", "townships")


@click.command("map")
@click.argument("classification", metavar="[CLASSIFICATION_GPKG]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output HTML file, e.g. maps/county.html.")
@click.option("--township", default=None, help="Only this township's parcels (detail map).")
@click.option("--layers", default=None,
              help="Comma list of layers to draw (those missing from the inputs are skipped); "
                   f"default: {','.join(ALL_LAYERS)}, with --diff: {','.join(DIFF_LAYERS)}, "
                   f"with --control: {','.join(CONTROL_LAYERS)}, "
                   f"with --causes: {','.join(CAUSES_LAYERS)}.")
@click.option("--diff", "diff_path", type=click.Path(exists=True), default=None,
              help="Map the changed parcels of 'farmland diff' (its output folder or "
                   "changes.gpkg), coloured by class flow; CLASSIFICATION_GPKG (run B) "
                   "is then optional and drawn below. 类别变化图。")
@click.option("--control", "control_path", type=click.Path(exists=True), default=None,
              help="Draw the closed loop of 'farmland control' (its control.gpkg or output "
                   "folder): class-3 parcels by loop status (layer loop) and the product "
                   "control zones (layer product_zones). 严格管控闭环图。")
@click.option("--causes", "causes_path", type=click.Path(exists=True), default=None,
              help="Draw where the contamination comes from, from 'farmland sources' (its "
                   "sources.gpkg or output folder): clusters by top candidate type, "
                   "candidate_links, Cd hotspots and confirm samples. 污染成因排查图。")
@click.option("--tiles", default="none", show_default=True,
              help="Basemap: none, osm, tianditu-vec:KEY, tianditu-img:KEY or a URL template "
                   "with {z}/{x}/{y} (see docs/basemaps.md).")
@click.option("--tiles-attr", default=None, help="Attribution text of a --tiles URL.")
@click.option("--title", default=None, help="Map title (default: bilingual class-map title).")
@click.option("--simplify", "simplify_m", default=5.0, show_default=True, type=float,
              help="Simplification tolerance in metres (0: none).")
@click.option("--rate-json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Rate summary for the title box: JSON {rate, target, gap_mu} or the "
                   "output of 'farmland rate' (county row, or the --township row).")
@click.option("--zones", "zones_file", type=click.Path(exists=True), default=None,
              help="Strict-control zones (instead of the GeoPackage layer 'zones').")
@click.option("--flags", "flags_file", type=click.Path(exists=True), default=None,
              help="Sparse-data flags (instead of the layer 'flags').")
@click.option("--plan", "plan_file", type=click.Path(exists=True), default=None,
              help="Planned sampling points: GeoPackage, GeoJSON or CSV with lon/lat.")
@click.option("--sources", "sources_file", type=click.Path(exists=True), default=None,
              help="Pollution sources (read like any farmland input: Chinese or English "
                   "column names, CSV/Excel with coordinates).")
@click.option("--townships", "townships_file", type=click.Path(exists=True), default=None,
              help="Township boundaries (read like any farmland input, e.g. XZQMC).")
@click.option("--province", is_flag=True,
              help="Many counties: write OUTPUT as an overview page (counties and townships "
                   "coloured by class shares, safe-utilisation rate and evidence) and one "
                   "county map per county in OUTPUT-stem_counties/, linked from it. The "
                   "county of a parcel: its 'county' column, else the first 6 digits of its "
                   "township code. 全域总览图与分县图。")
@click.option("--measures", "measures_file", type=click.Path(exists=True), default=None,
              help="With --province: the measures ledger 措施台账, for the rate of each "
                   "county and township (as 'farmland rate' computes it).")
@click.option("--year", type=int, default=None,
              help="With --province --measures: accounting year (default: the latest).")
@click.option("--target", type=click.FloatRange(0, 1), default=0.91, show_default=True,
              help="With --province: safe-utilisation target.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="With --province: write the county maps in this many processes.")
@crs_option
@overwrite_option
def command(classification, output, township, layers, diff_path, control_path, causes_path,
            tiles, tiles_attr, title, simplify_m, rate_json, zones_file, flags_file, plan_file,
            sources_file, townships_file, province, measures_file, year, target, workers, crs,
            overwrite):
    """Write an interactive map of CLASSIFICATION_GPKG (from 'farmland classify') that
    works offline as a single HTML file.

    Layers: parcels by class, and when available soil samples, crop samples,
    strict-control zones, sparse-data flags, planned points, pollution sources,
    township boundaries and names. With --diff, the parcels whose class changed between
    two runs, coloured by flow (1→2, 2→3, 2→1 …). With --control, the class-3 parcels
    by closed-loop status and the product control zones. With --causes, the
    contaminated-land clusters coloured by the type of their top candidate source, the
    links to the candidates, Cd hot spots and the confirmation samples. 输出单文件离线交互地图。
    """
    from farmland.errors import InputError
    from farmland.io.write import refuse_existing
    from farmland.maps.causes import CAUSES_TITLE
    from farmland.maps.control import CONTROL_TITLE
    from farmland.maps.page import DEFAULT_TITLE, make_map, save_map
    from farmland.maps.units import n_counties
    from farmland.runs.folder import CONTROL_GPKG, SOURCES_GPKG
    from farmland.runs.source_outputs import read_cause_layers

    default = DIFF_LAYERS if diff_path else tuple(dict.fromkeys(
        (*(CONTROL_LAYERS if control_path else ()), *(CAUSES_LAYERS if causes_path else ()))
    )) or ALL_LAYERS
    wanted = _parse_layers(layers or ",".join(default), need_parcels=not diff_path)
    refuse_existing([output], overwrite=overwrite)
    files = {"zones": zones_file, "flags": flags_file, "plan": plan_file,
             "sources": sources_file, "townships": townships_file}
    if diff_path:
        if control_path or causes_path:
            logger.info("a change map draws neither the closed loop nor the sources; "
                        "--control and --causes ignored")
        fmap = _diff_map(Path(diff_path), classification, wanted, files, crs=crs, title=title,
                         tiles=tiles, tiles_attr=tiles_attr, simplify_m=simplify_m)
        path = save_map(fmap, output, overwrite=overwrite)
        click.echo(f"map: {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return
    if classification is None:
        raise InputError("no classification to map", column="CLASSIFICATION_GPKG",
                         fix="give the classification.gpkg of 'farmland classify', or --diff")
    if province:
        _province_maps(Path(classification), Path(output), wanted, files, crs=crs,
                       measures=measures_file, year=year, target=target, title=title,
                       tiles=tiles, tiles_attr=tiles_attr, simplify_m=simplify_m,
                       workers=workers, overwrite=overwrite)
        return
    frames = read_map_layers(Path(classification), wanted, files, crs=crs)
    frames.update(read_control(_source(control_path, classification, wanted, CONTROL_KEYS,
                                       CONTROL_GPKG, "--control"), wanted))
    causes = _source(causes_path, classification, wanted, CAUSE_KEYS, SOURCES_GPKG, "--causes")
    if causes is not None:
        frames.update(read_cause_layers(causes, wanted))
    rate = _rate_from_json(Path(rate_json), township) if rate_json else None
    parcels = frames.pop("parcels")
    fmap = make_map(parcels, **frames, rate=rate, township=township,
                    title=title or (CONTROL_TITLE if control_path else CAUSES_TITLE
                                    if causes_path else DEFAULT_TITLE),
                    tiles=tiles, tiles_attr=tiles_attr, simplify_m=simplify_m)
    path = save_map(fmap, output, overwrite=overwrite)
    click.echo(f"map: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    counties = n_counties(parcels) if township is None else 1
    if counties > 1:
        click.echo(f"note: the parcels span {counties} counties; --province writes an "
                   "overview page and one map per county")


def _province_maps(classification: Path, output: Path, wanted: set[str],
                   files: dict[str, str | None], *, crs: str | None, measures: str | None,
                   year: int | None, target: float, title: str | None, tiles: str,
                   tiles_attr: str | None, simplify_m: float, workers: int,
                   overwrite: bool) -> None:
    """``--province``: the overview page and the county pages beside it."""
    from farmland.cli.rate import rate_settings
    from farmland.io.readers import read_measures
    from farmland.maps.overview import write_province_maps
    from farmland.runs.folder import read_classification

    parcels, crops, manifest = read_classification(classification)
    overlays = read_map_layers(classification, wanted, files, crs=crs, with_parcels=False)
    mode, min_samples = rate_settings(manifest)
    done = write_province_maps(
        parcels, output, overlays=overlays,
        measures=read_measures(measures) if measures else None, crops=crops,
        rate_options={"year": year, "target": target, "accounting": mode,
                      "min_township_samples": min_samples},
        title=title, tiles=tiles, tiles_attr=tiles_attr, simplify_m=simplify_m,
        workers=workers, overwrite=overwrite)
    size = sum(p.stat().st_size for p in done.counties.values()) / 1e6
    click.echo(f"overview: {done.overview} ({done.overview.stat().st_size / 1e6:.2f} MB); "
               f"{len(done.counties)} county maps in {done.overview.parent / _folder(done)} "
               f"({size:.1f} MB)")


def _folder(done) -> str:
    first = next(iter(done.counties.values()), None)
    return first.parent.name if first is not None else ""


def _parse_layers(text: str, *, need_parcels: bool = True) -> set[str]:
    from farmland.errors import InputError

    wanted = {t.strip() for t in text.split(",") if t.strip()}
    known = (*ALL_LAYERS, *CONTROL_KEYS, *CAUSE_KEYS)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise InputError("unknown map layer(s)", column="--layers", value=",".join(unknown),
                         fix="choose from " + ",".join(known))
    if need_parcels and "parcels" not in wanted:
        raise InputError("the parcels layer cannot be left out", column="--layers", value=text,
                         fix="add parcels to --layers")
    return wanted


def _diff_map(path: Path, classification: str | None, wanted: set[str],
              files: dict[str, str | None], *, crs: str | None, title: str | None,
              tiles: str, tiles_attr: str | None, simplify_m: float):
    """The change map of ``path`` (a 'farmland diff' folder or changes.gpkg) over the
    optional run-B classification."""
    from farmland.maps.diff import DIFF_TITLE, make_diff_map

    frames = (read_map_layers(Path(classification), wanted | {"parcels"}, files, crs=crs)
              if classification else _overlay_files(wanted, files, crs=crs))
    parcels = frames.pop("parcels", None)
    changes = read_changes(path, parcels)
    if "parcels" not in wanted:
        parcels = None
    keep = {k: v for k, v in frames.items() if k in ("townships", "samples", "crops")}
    left = sorted(set(frames) - set(keep))
    if left:
        logger.info("a change map draws townships, samples and crops only; not drawn: %s",
                    ", ".join(left))
    return make_diff_map(changes, parcels=parcels, **keep, title=title or DIFF_TITLE,
                         subtitle=_diff_subtitle(path), tiles=tiles, tiles_attr=tiles_attr,
                         simplify_m=simplify_m)


def _overlay_files(wanted: set[str], files: dict[str, str | None], *, crs: str | None) -> dict:
    """Overlays given as files (no classification GeoPackage)."""
    out = {}
    for key, file in files.items():
        if file and key in wanted:
            if key in ("sources", "townships"):
                from farmland.io import readers as fio
                reader = fio.read_sources if key == "sources" else fio.read_townships
                out[key] = reader(file, crs=crs)
            else:
                out[key] = _read_overlay(Path(file), key)
    return out


def read_changes(path: Path, parcels=None):
    """The changed parcels of 'farmland diff': ``changes.gpkg`` (layer ``changes``) in a
    diff folder, or that file; without it, ``changes.csv`` joined by ``parcel_id`` to the
    geometry of ``parcels`` (the run-B classification)."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from farmland.errors import InputError
    from farmland.runs.folder import CHANGES, CHANGES_GPKG, CHANGES_LAYER

    gpkg = path / CHANGES_GPKG if path.is_dir() else path
    if gpkg.exists() and gpkg.suffix.lower() == ".gpkg":
        names = [name for name, geom in pyogrio.list_layers(gpkg) if geom]
        if not names:
            raise InputError("no layer with geometry", file=gpkg,
                             fix="give the changes.gpkg written by 'farmland diff'")
        return _check_changes(gpd.read_file(
            gpkg, layer=CHANGES_LAYER if CHANGES_LAYER in names else names[0]), gpkg)
    csv = path / CHANGES if path.is_dir() else path
    if not (csv.exists() and csv.suffix.lower() == ".csv"):
        raise InputError("no changes.gpkg or changes.csv", file=path,
                         fix="give the output folder of 'farmland diff'")
    if parcels is None or "parcel_id" not in parcels:
        raise InputError("changes.csv has no geometry", file=csv,
                         fix="give run B's classification.gpkg as well, or the changes.gpkg "
                             "of a newer 'farmland diff'")
    table = _check_changes(pd.read_csv(csv, encoding="utf-8-sig", dtype={"parcel_id": str}), csv)
    uniq = parcels.drop_duplicates("parcel_id")
    geom = pd.Series(uniq.geometry.to_numpy(), index=uniq["parcel_id"].astype(str).to_numpy())
    found = table["parcel_id"].map(geom)
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(found.to_numpy(), crs=parcels.crs),
                            crs=parcels.crs)


def _check_changes(table: pd.DataFrame, file: Path) -> pd.DataFrame:
    """Refuse a table that is not the changes of 'farmland diff' (one line, the fix)."""
    from farmland.errors import InputError

    has_flow = "flow" in table or {"class_a", "class_b"} <= set(table.columns)
    if "parcel_id" not in table or not has_flow:
        missing = "parcel_id" if "parcel_id" not in table else "flow"
        raise InputError("not the changes written by 'farmland diff' (no "
                         f"'{missing}' column)", file=file, column=missing,
                         value=", ".join(map(str, list(table.columns)[:8])),
                         fix="give the output folder of 'farmland diff', or its changes.gpkg "
                             "or changes.csv")
    return table


def _source(given: str | None, classification: str, wanted: set[str], keys: tuple[str, ...],
            name: str, option: str) -> Path | None:
    """The file given (--control, --causes), else the file ``name`` (control.gpkg,
    sources.gpkg) beside the classification when one of its layers ``keys`` is asked for
    in --layers (None: none of them to draw)."""
    if given:
        return Path(given)
    if not wanted & set(keys):
        return None
    beside = Path(classification).parent / name
    if beside.is_file():
        return beside
    logger.info("no %s beside %s; its layers are not drawn (give %s)", name, classification,
                option)
    return None


def read_control(path: Path | None, wanted: set[str]) -> dict:
    """The wanted closed-loop layers (``loop``, ``product_zones``) of the control.gpkg of
    'farmland control' (``path``: the file or its output folder).

    Refuses, in one line, a file that is not that GeoPackage: unreadable, without a wanted
    layer, or without the columns the layer is drawn from."""
    import geopandas as gpd
    import pyogrio

    from farmland.errors import InputError
    from farmland.runs.folder import CONTROL_GPKG

    keys = [k for k in CONTROL_KEYS if k in wanted]
    if path is None or not keys:
        return {}
    gpkg = path / CONTROL_GPKG if path.is_dir() else path
    fix = "give the control.gpkg written by 'farmland control', or its output folder"
    try:
        names = {name for name, geom in pyogrio.list_layers(gpkg) if geom}
    except (pyogrio.errors.DataSourceError, OSError):
        raise InputError("not the control.gpkg of 'farmland control' (not a GeoPackage, or "
                         "missing)", file=gpkg, fix=fix) from None
    missing = [k for k in keys if k not in names]
    if missing:
        raise InputError(f"not the control.gpkg of 'farmland control' (no layer "
                         f"'{missing[0]}')", file=gpkg, value=", ".join(sorted(names)[:8]),
                         fix=fix)
    frames = {}
    for key in keys:
        frame = gpd.read_file(gpkg, layer=key)
        absent = [c for c in CONTROL_COLUMNS[key] if c not in frame]
        if absent:
            raise InputError(f"not the {key} layer of 'farmland control' (no '{absent[0]}' "
                             "column)", file=gpkg, column=absent[0],
                             value=", ".join(map(str, list(frame.columns)[:8])), fix=fix)
        frames[key] = frame
    return frames


def _diff_subtitle(path: Path) -> str | None:
    """"A → B" from the diff.json next to the changes, when it names the runs."""
    folder = path if path.is_dir() else path.parent
    try:
        from farmland.runs.folder import DIFF_JSON

        data = json.loads((folder / DIFF_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sides = []
    for side in ("a", "b"):
        name, year = data.get(f"label_{side}") or data.get(f"run_{side}"), data.get(f"year_{side}")
        sides.append(" ".join(str(v) for v in (name, year and f"({year})") if v))
    return " → ".join(sides) if all(sides) else None


def read_map_layers(gpkg: Path, wanted: set[str], files: dict[str, str | None], *,
                    crs: str | None = None, with_parcels: bool = True) -> dict:
    """The frames ``make_map`` takes: ``parcels`` (unless ``with_parcels`` is false) plus
    each wanted overlay found.

    An overlay comes from its file option when given, else from the GeoPackage layer
    of the same name when present; otherwise it is left out (logged). Source and
    township files go through :mod:`farmland.io.readers` (column aliases, CRS checks; ``crs``
    for files that declare none).
    """
    from farmland.errors import InputError
    from farmland.io import read_cache

    present = {name for name, _ in read_cache.list_layers(gpkg)}
    if "parcels" not in present:
        raise InputError("no 'parcels' layer", file=gpkg, value=sorted(present),
                         fix="give the classification.gpkg written by 'farmland classify'")
    frames = {"parcels": _read_vector(gpkg, "parcels")} if with_parcels else {}
    for key in OVERLAYS:
        if key not in wanted:
            continue
        if files.get(key) and key in ("sources", "townships"):
            from farmland.io import readers as fio
            reader = fio.read_sources if key == "sources" else fio.read_townships
            frames[key] = reader(files[key], crs=crs)
        elif files.get(key):
            frames[key] = _read_overlay(Path(files[key]), key)
        elif key in present:
            frames[key] = _read_vector(gpkg, key)
        else:
            logger.info("no %s layer in %s; not drawn", key, gpkg)
    return frames


def _read_overlay(path: Path, key: str):
    """An overlay from a file: its layer named ``key`` when it has one (``zones`` in the
    flags.gpkg of 'farmland flag'), all flag layers for ``flags``, else the only layer."""
    import pyogrio

    names = ([name for name, geom in pyogrio.list_layers(path) if geom]
             if path.suffix.lower() != ".csv" else [])
    if key in names:
        return _read_vector(path, key)
    return _read_vector(path, None, every_layer=key == "flags")


def _read_vector(path: Path, layer: str | None, *, every_layer: bool = False):
    """One layer of a vector file (all layers stacked when ``every_layer``), or a CSV."""
    import pandas as pd

    from farmland.io import read_cache  # as gpd.read_file; the demo reads a layer once

    if path.suffix.lower() == ".csv":
        return _read_csv_points(path)
    if layer is None and every_layer:
        names = [name for name, geom in read_cache.list_layers(path)
                 if geom and name != "zones"]
        if len(names) > 1:  # e.g. the flag layers written by 'farmland flag'
            frames = [read_cache.read_dataframe(path, layer=name) for name in names]
            crs = frames[0].crs
            return pd.concat([f.to_crs(crs) if f.crs else f for f in frames], ignore_index=True)
    return read_cache.read_dataframe(path, layer=layer)


def _read_csv_points(path: Path):
    """Points from a CSV with lon/lat (WGS84); bilingual headers such as
    ``经度 lon (WGS84)`` or ``点位编号 point_id`` are reduced to their English name."""
    import re

    import geopandas as gpd
    import pandas as pd

    from farmland.errors import InputError

    table = pd.read_csv(path, encoding="utf-8-sig")
    names = {}
    for col in table.columns:
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(col))
        names[col] = words[0].lower() if words and not str(col).isascii() else str(col).lower()
    table = table.rename(columns=names)
    if "lon" not in table or "lat" not in table:
        raise InputError("a CSV layer needs 'lon' and 'lat' columns (WGS84 degrees)",
                         file=path, value=list(names),
                         fix="export the points with lon/lat, or give a GeoPackage")
    geometry = gpd.points_from_xy(table["lon"], table["lat"])
    return gpd.GeoDataFrame(table, geometry=geometry, crs="EPSG:4326")


def _rate_from_json(path: Path, township: str | None) -> dict[str, float]:
    """``{rate, target, gap_mu}`` from a flat JSON or from 'farmland rate' output rows."""
    from farmland.errors import InputError

    data = json.loads(path.read_text(encoding="utf-8"))
    if "rows" in data:
        level, name = ("county", None) if township is None else ("township", township)
        rows = [r for r in data["rows"] if r.get("level") == level
                and (name is None or r.get("name") == name)]
        if not rows:
            raise InputError(f"no {level} row in the rate summary", file=path,
                             value=township, fix="give the rate JSON of the same run")
        data = {**rows[0], "target": rows[0].get("target", data.get("target"))}
    if data.get("rate") is None and "rate" not in data:
        raise InputError("the rate summary has no 'rate'", file=path,
                         fix='write {"rate": 0.9, "target": 0.91, "gap_mu": 120.5}')
    out = {"rate": float("nan") if data["rate"] is None else float(data["rate"]),
           "target": float(data.get("target") or 0.91)}
    if data.get("gap_mu") is not None:
        out["gap_mu"] = float(data["gap_mu"])
    for key in ("rate_official", "rate_parcel_verified", "rate_measures_only",
                "evidence_own_mu", "evidence_rate_mu", "evidence_none_mu"):
        if data.get(key) is not None:
            out[key] = float(data[key])
    return out
