"""Province overview map: counties and townships coloured by class shares, safe-utilisation
rate and evidence, each county linking to its own county map.

:func:`write_province_maps` writes the overview page and, beside it in
``<stem>_counties/``, one county page per county built by :func:`farmland.maps.page.make_map`
(same layers, labels, escaping and inlined assets as any county map). The overview
carries no parcel: one polygon per county and per township (:mod:`farmland.maps.units`),
drawn once per theme (:mod:`farmland.maps.choropleth`) as exclusive base layers, with
county borders on top, bilingual tooltips (``textContent``) whose popup links to the
county page, a legend and a list of the county pages. Its size grows with the number of
townships, not of parcels.
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.io.write import refuse_existing
from farmland.maps.choropleth import THEME_NAMES, THEMES, legend_rows, theme_columns
from farmland.maps.labels import LabelLayer, township_label_points
from farmland.maps.layers import FeatureLayer, ReadyHook
from farmland.maps.page import DEFAULT_TITLE, _base_map, _check_crs, make_map, save_map
from farmland.maps.panels import DEFAULT_TARGET, Panel, legend_box
from farmland.maps.township import clip_to_area
from farmland.maps.units import (
    UNKNOWN_COUNTY,
    boundary_outlines,
    county_keys,
    county_names,
    county_rates,
    unit_outlines,
    unit_table,
)
from farmland.vocabulary import townships_of

logger = logging.getLogger(__name__)

OVERVIEW_TITLE = "耕地土壤环境质量总览 Farmland soil environmental quality: overview"
#: layer-control name of the county names
COUNTY_LABELS = "县名 County names"
#: folder of the county pages, beside the overview: ``<stem>_counties``
COUNTY_FOLDER = "{stem}_counties"


@dataclass
class ProvinceUnits:
    """Counties and townships of a run with their statistics and outlines (metric CRS)."""

    counties: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    keys: pd.Series  # county key per parcel
    total: pd.Series | None = None  # province rate row (None without measures)
    cell_m: float = 0.0


@dataclass
class ProvinceMaps:
    """What :func:`write_province_maps` wrote, and the seconds it took per step."""

    overview: Path
    counties: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def province_units(parcels: gpd.GeoDataFrame, *, measures: pd.DataFrame | None = None,
                   crops: pd.DataFrame | None = None,
                   townships: gpd.GeoDataFrame | None = None,
                   **rate_options: object) -> ProvinceUnits:
    """Counties and townships of ``parcels`` (a classification ``parcels`` layer in a metric
    CRS): statistics (:func:`farmland.maps.units.unit_table`), rates of
    :mod:`farmland.rate` when a ``measures`` ledger is given (``rate_options``: year,
    target, accounting, min_township_samples), outlines from ``townships`` where they
    match, else dissolved from the parcels."""
    _check_crs(parcels, "parcels", projected=True)
    keys = county_keys(parcels)
    if keys is None:
        logger.info("the parcels name no county (no 'county' or 'township_code' column): "
                    "one county")
        keys = pd.Series(UNKNOWN_COUNTY, index=parcels.index)
    names = county_names(parcels, keys)
    rates, total = (county_rates(parcels, keys, measures, crops, **rate_options)
                    if measures is not None else (None, None))
    counties = unit_table(parcels, keys, "county", rates, names=names)
    towns = unit_table(parcels, keys, "township", rates, names=names)
    unit = pd.MultiIndex.from_frame(towns[["county", "township"]]).get_indexer(
        pd.MultiIndex.from_arrays([keys.to_numpy(), townships_of(parcels).to_numpy()]))
    group = pd.Index(counties["county"]).get_indexer(towns["county"])
    town_geoms, county_geoms, cell = unit_outlines(parcels, unit, group)
    if townships is not None:
        _check_crs(townships, "townships")
        given = boundary_outlines(townships, towns, parcels.crs)
        hit = ~shapely.is_empty(given)
        if hit.any():
            logger.info("overview: %d of %d townships drawn from the townships layer",
                        int(hit.sum()), len(towns))
            town_geoms = np.where(hit, given, town_geoms)
            county_geoms = np.array([shapely.union_all(town_geoms[group == g])
                                     for g in range(len(counties))], dtype=object)
    return ProvinceUnits(gpd.GeoDataFrame(counties, geometry=county_geoms, crs=parcels.crs),
                         gpd.GeoDataFrame(towns, geometry=town_geoms, crs=parcels.crs),
                         keys, total, cell)


def county_file(key: str) -> str:
    """File name of a county page: the key with anything but letters, digits, ``-`` and
    ``_`` replaced by ``_``."""
    return (re.sub(r"[^\w-]+", "_", str(key)).strip("_") or "county") + ".html"


def make_overview(units: ProvinceUnits, *, title: str = OVERVIEW_TITLE,
                  links: dict[str, str] | None = None, target: float = DEFAULT_TARGET,
                  tiles: str = "none", tiles_attr: str | None = None) -> folium.Map:
    """The overview page of ``units``: a base layer per level and theme, county borders,
    tooltips (popup links to ``links[county]``, a relative URL), legend, title."""
    links = links or {}
    frames = {}
    for level, gdf in (("county", units.counties), ("township", units.townships)):
        rows = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        rows = theme_columns(rows.assign(_href=rows["county"].map(links)))
        if "target_pct" in rows:
            rows["target_pct"] = rows["target_pct"].fillna(100 * target)
        frames[level] = (rows, rows.geometry.to_crs(4326).to_numpy())
    every = np.concatenate([frames[level][1] for level in frames])
    fmap = _base_map(every, title, tiles, tiles_attr)
    for level in ("county", "township"):
        for theme in THEMES:
            FeatureLayer.from_frame(f"{level}_{theme}", *frames[level], overlay=False,
                                    show=(level, theme) == ("county", THEMES[0])).add_to(fmap)
    FeatureLayer.from_frame("county_lines", *frames["county"]).add_to(fmap)
    named = frames["county"][0].assign(township=frames["county"][0]["county_name"])
    points = township_label_points(None, named, units.counties.crs)
    if len(points):
        LabelLayer(points, name=COUNTY_LABELS).add_to(fmap)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    Panel(overview_title_html(title, units)).add_to(fmap)
    Panel(overview_legend_html(units.counties, links, target)).add_to(fmap)
    ReadyHook().add_to(fmap)
    logger.info("overview of %d counties, %d townships", len(units.counties),
                len(units.townships))
    return fmap


def overview_title_html(title: str, units: ProvinceUnits) -> str:
    """Escaped title box: title, counts, area and the province rate when known."""
    esc = html.escape
    c = units.counties
    lines = [f'<div class="fl-box fl-title" id="fl-title"><h1>{esc(title)}</h1>',
             (f'<div class="fl-sub">全域总览 Overview · {len(c):,} 县 counties · '
             f"{len(units.townships):,} 乡镇 townships · 图斑 {int(c['n_parcels'].sum()):,} "
             f"parcels · {float(c['area_mu'].sum()):,.1f} 亩 mu</div>")]
    t = units.total
    if t is not None and pd.notna(t["rate"]):
        ok = "fl-rate-ok" if bool(t["met"]) else "fl-rate-low"
        gap = float(t["gap_mu"])
        lines.append(f'<div>全域安全利用率 Overall safe-utilisation rate: <span class="{ok}">'
                     f"{100 * float(t['rate']):.1f} %</span> · 目标 target "
                     f"{100 * float(t['target']):.4g} %"
                     + (f" · 差距 gap {gap:,.1f} 亩 mu" if gap > 0 else "") + "</div>")
    elif t is None:
        lines.append('<div class="fl-sub">无措施台账，未计算安全利用率 no measures ledger: '
                     "no rate</div>")
    lines.append("</div>")
    return "\n".join(lines)


def overview_legend_html(counties: pd.DataFrame, links: dict[str, str], target: float) -> str:
    """Escaped legend: the bins of each theme (those of the theme drawn shown), then the
    county pages with their rate."""
    esc = html.escape
    rows = []
    for theme in THEMES:  # the runtime shows the rows of the theme on the map
        zh, en = THEME_NAMES[theme]
        shown = f'data-fl-theme="{theme}"' + ("" if theme == THEMES[0] else
                                               ' style="display:none"')
        rows.append(f'<tr {shown}><td colspan="3"><b>{esc(zh)} {esc(en)}</b></td></tr>')
        rows.extend(f'<tr {shown}><td><span class="fl-sw" style="background:{colour}">'
                    f'</span></td><td colspan="2">{esc(label)}</td></tr>'
                    for colour, label in legend_rows(theme, 100 * target))
    rows.append('<tr><td colspan="3"><b>县图 County maps</b></td></tr>')
    for key, name, rate in zip(counties["county"], counties["county_name"],
                               counties["rate_pct"], strict=True):
        href = links.get(key)
        text = esc(str(name))
        cell = f'<a href="{esc(href, quote=True)}">{text}</a>' if href else text
        shown = "—" if pd.isna(rate) else f"{rate:.1f} %"
        rows.append(f'<tr class="fl-county"><td></td><td>{cell}</td>'
                    f'<td class="fl-num">{shown}</td></tr>')
    return legend_box("图例 Legend", rows)


def write_province_maps(parcels: gpd.GeoDataFrame, output: str | Path, *,
                        overlays: dict[str, gpd.GeoDataFrame] | None = None,
                        measures: pd.DataFrame | None = None, crops: pd.DataFrame | None = None,
                        rate_options: dict[str, object] | None = None,
                        title: str | None = None, tiles: str = "none",
                        tiles_attr: str | None = None, simplify_m: float = 5.0,
                        workers: int = 1, overwrite: bool = False) -> ProvinceMaps:
    """Write the overview ``output`` and a county page per county in ``<stem>_counties/``.

    ``overlays`` (samples, plan, zones …, as for :func:`farmland.maps.page.make_map`) are
    cut to each county (its outline grown by one grid cell); a county page without a
    townships overlay gets the dissolved township outlines. ``workers`` > 1 writes the
    county pages in that many processes (each gets its county's rows only).
    """
    output = Path(output)
    folder = output.parent / COUNTY_FOLDER.format(stem=output.stem)
    rate_options = dict(rate_options or {})
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    units = province_units(parcels, measures=measures, crops=crops,
                           townships=(overlays or {}).get("townships"), **rate_options)
    files: dict[str, Path] = {}
    for key in units.counties["county"]:
        name = county_file(key)
        while folder / name in files.values():  # two keys with the same file name
            name = name.removesuffix(".html") + "_.html"
        files[key] = folder / name
    refuse_existing([output, *files.values()], overwrite=overwrite)
    links = {key: quote(f"{folder.name}/{path.name}") for key, path in files.items()}
    target = float(rate_options.get("target", DEFAULT_TARGET))  # type: ignore[arg-type]
    fmap = make_overview(units, title=title or OVERVIEW_TITLE, links=links, target=target,
                         tiles=tiles, tiles_attr=tiles_attr)
    save_map(fmap, output, overwrite=overwrite)
    seconds["overview"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    options = {"title": title or DEFAULT_TITLE, "tiles": tiles, "tiles_attr": tiles_attr,
               "simplify_m": simplify_m, "back": quote(f"../{output.name}"),
               "overwrite": overwrite}
    jobs = (county_job(parcels, units, i, files[key], overlays or {})
            for i, key in enumerate(units.counties["county"]))
    out = ProvinceMaps(output, seconds=seconds)
    if workers > 1 and len(files) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked copy of a process holding GDAL/Arrow threads can hang
        with ProcessPoolExecutor(min(workers, len(files)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(write_county_page, job, **options) for job in jobs]
            paths = [f.result() for f in futures]
    else:
        paths = [write_county_page(job, **options) for job in jobs]
    out.counties = dict(zip(files, paths, strict=True))
    seconds["county pages"] = time.perf_counter() - t0
    return out


def county_job(parcels: gpd.GeoDataFrame, units: ProvinceUnits, i: int, path: Path,
               overlays: dict[str, gpd.GeoDataFrame]) -> dict:
    """What the page of county ``i`` needs: its parcels, the overlays cut to it (the
    dissolved township outlines when no townships layer is given), its row, the path."""
    row = units.counties.iloc[i]
    key = row["county"]
    mine = parcels[(units.keys.reindex(parcels.index) == key).to_numpy()]
    area = shapely.buffer(row.geometry, max(units.cell_m, 100.0))
    cut = {k: clip_to_area(k, v, area, parcels.crs) for k, v in overlays.items()
           if v is not None and len(v)}
    if "townships" not in cut:
        towns = units.townships[units.townships["county"] == key]
        cut["townships"] = towns[["township", "code", "geometry"]].rename(
            columns={"code": "township_code"})
    rate = None
    if pd.notna(row.get("rate_pct")):
        rate = {"rate": row["rate_pct"] / 100, "target": row["target_pct"] / 100,
                "gap_mu": row["gap_mu"]}
    return {"parcels": mine, "overlays": {k: v for k, v in cut.items() if len(v)},
            "rate": rate, "name": str(row["county_name"]), "path": path}


def write_county_page(job: dict, *, title: str, tiles: str, tiles_attr: str | None,
                      simplify_m: float, back: str, overwrite: bool) -> Path:
    """One county page (:func:`county_job`): the county map of
    :func:`farmland.maps.page.make_map` with a link back to the overview."""
    fmap = make_map(job["parcels"], **job["overlays"], rate=job["rate"],
                    title=f"{job['name']} · {title}", tiles=tiles, tiles_attr=tiles_attr,
                    simplify_m=simplify_m)
    Panel('<div class="fl-box" style="bottom:24px;left:10px">'
          f'<a href="{html.escape(back, quote=True)}">← 全域总览 Overview</a></div>'
          ).add_to(fmap)
    return save_map(fmap, job["path"], overwrite=overwrite)
