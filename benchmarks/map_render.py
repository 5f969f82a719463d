"""Benchmark farmland maps: file size and render time in headless Chromium.

Not part of the test suite. Needs /usr/bin/chromium (``.ci/install_chromium.sh``)::

    python benchmarks/map_render.py                 # demo county or synthetic
    python benchmarks/map_render.py --synthetic 30000
    python benchmarks/map_render.py --compare-folium  # + plain folium GeoJson size
    # a province from benchmarks/make_province.py, classified with 'farmland classify':
    python benchmarks/map_render.py --classification RUN/classification.gpkg  # one page
    python benchmarks/map_render.py --classification RUN/classification.gpkg --province \
        --measures /tmp/province_0.1/measures.csv  # overview + county pages (issue 19)

Parcels come from ``data/demo/parcels.gpkg`` when it exists, with the demo's true
classes (``truth/expected_classes.csv``), its townships, soil samples (point class =
class of the parcel they fall in; the benchmark is about drawing, not classifying)
and pollution sources. Otherwise (or with ``--synthetic N``) from a synthetic coverage:
Voronoi cells with wiggly shared edges (a vertex every 8 m, ±3–5 m), 70 % of cells
kept as farmland, classes from a seeded smooth random field — a harder case (≈ 120
vertices per parcel against ≈ 7 in the demo county). Render time is
``farmland.drawnAt``: milliseconds from navigation start until two animation frames
after the last layer was added (the canvas has been painted), network blocked;
median of 3 page loads. The screenshot of the last load is written (palette PNG) to
``docs/img/demo_map.png``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "parcels.gpkg"
SCREENSHOT = ROOT / "docs" / "img" / "demo_map.png"
X0, Y0 = 600_000.0, 2_700_000.0
TOWNSHIP_NAMES = ["清水镇", "白云镇", "石门乡", "龙潭镇", "桃源乡", "新田镇", "金鸡镇",
                  "河口乡", "太平镇", "长岭乡", "青山镇", "双江镇"]


def synthetic_parcels(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """About ``n`` farmland parcels forming a valid coverage with wiggly shared edges."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n / 0.7) * 230.0  # ~ 230 m between cell centres
    box = shapely.box(X0, Y0, X0 + side, Y0 + side)
    m = int(n / 0.7)
    seeds = shapely.points(rng.uniform(X0, X0 + side, m), rng.uniform(Y0, Y0 + side, m))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box)), box)
    edges = shapely.get_parts(shapely.line_merge(shapely.union_all(shapely.boundary(cells))))
    edges = shapely.transform(shapely.segmentize(edges, 8.0), _wiggle)
    polys = shapely.get_parts(shapely.polygonize(edges))
    polys = polys[rng.random(len(polys)) < 0.7]
    return gpd.GeoDataFrame(
        {"BSM": [f"4305210{i:06d}" for i in range(len(polys))],
         "DLBM": rng.choice(["0101", "0102", "0103", "0201"], len(polys), p=[.6, .1, .25, .05])},
        geometry=polys, crs="EPSG:4545")


def _wiggle(c: np.ndarray) -> np.ndarray:
    x, y = c[:, 0], c[:, 1]
    return np.c_[x + 3 * np.sin(y / 7.0) + 2 * np.sin(x / 13.0),
                 y + 3 * np.cos(x / 9.0) + 2 * np.cos(y / 11.0)]


def classified(raw: gpd.GeoDataFrame, seed: int = 0,
               truth: pd.Series | None = None) -> gpd.GeoDataFrame:
    """Canonical ``parcels`` columns; classes from ``truth`` (by BSM) or a random field."""
    from farmland.classes import label_en, label_zh
    from farmland.standards.vocabulary import landuse_from_dlbm

    rng = np.random.default_rng(seed)
    c = raw.geometry.centroid
    x, y = c.x.to_numpy(), c.y.to_numpy()
    field = sum(np.sin(x / rng.uniform(1500, 6000) + rng.uniform(0, 6))
                * np.cos(y / rng.uniform(1500, 6000) + rng.uniform(0, 6)) for _ in range(6))
    field = field + rng.normal(0, 0.4, len(x))
    cls = np.digitize(field, np.quantile(field, [0.72, 0.92]))  # 72/20/8 %
    final = pd.array(cls + 1, dtype="Int8")
    far = np.hypot(x - x.min(), y - y.max())  # "too far from data": one corner, 3 %
    final[far <= np.quantile(far, 0.03)] = pd.NA
    if truth is not None:
        final = pd.array(raw["BSM"].astype(str).map(truth).to_numpy(), dtype="Int8")
    p2 = np.clip(rng.beta(2, 5, len(x)), 0, 1)
    out = gpd.GeoDataFrame({
        "parcel_id": raw["BSM"].astype(str).to_numpy(),
        "township": _townships(raw, x, y),
        "dlbm": raw["DLBM"].astype(str).to_numpy(),
        "final_class": final,
        "area_mu": (raw["TBDLMJ"].to_numpy() if "TBDLMJ" in raw else raw.area.to_numpy()) * 0.0015,
        "rule": np.where(rng.random(len(x)) < 0.2, "points:majority", "interpolated:area_majority"),
        "driving_element": rng.choice(["cd", "as", "pb", "hg"], len(x), p=[.6, .2, .15, .05]),
        "sample_ids": [",".join(f"S{j:05d}" for j in rng.integers(0, 40_000, 3)) for _ in x],
        "p_class_1": 1 - p2, "p_class_2": p2 * 0.9, "p_class_3": p2 * 0.1,
    }, geometry=raw.geometry.to_numpy(), crs=raw.crs)
    out["landuse"] = out["dlbm"].map(landuse_from_dlbm)
    out["class_label_zh"] = [label_zh(v) for v in out["final_class"]]
    out["class_label_en"] = [label_en(v) for v in out["final_class"]]
    return out


def _townships(raw: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    for col in ("XZQMC", "township", "ZLDWMC"):
        if col in raw:
            return raw[col].astype(str).to_numpy()
    gx = np.digitize(x, np.quantile(x, [1 / 4, 2 / 4, 3 / 4]))
    gy = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    return np.array(TOWNSHIP_NAMES)[gy * 4 + gx]


def township_outlines(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rough township boundaries (convex hulls of their parcels' vertices) for the page."""
    names = sorted(parcels["township"].unique())
    hulls = [shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(
        parcels.geometry[parcels["township"] == name].to_numpy()))) for name in names]
    return gpd.GeoDataFrame({"township": names}, geometry=hulls, crs=parcels.crs)


def soil_samples(parcels: gpd.GeoDataFrame, seed: int = 0) -> gpd.GeoDataFrame:
    """One sample per ~1 km² of the county, in parcels, point class = the parcel's."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = parcels.total_bounds
    n = int((maxx - minx) * (maxy - miny) / 1e6)
    picks = parcels.iloc[rng.choice(len(parcels), n, replace=False)]
    return gpd.GeoDataFrame(
        {"sample_id": [f"S{i:05d}" for i in range(n)],
         "point_class": picks["final_class"].fillna(1).to_numpy(),
         "ph": rng.uniform(4.5, 8.0, n).round(2), "cd": rng.lognormal(-1.2, 0.6, n).round(3)},
        geometry=picks.geometry.representative_point().to_numpy(), crs=parcels.crs)


def demo_layers() -> dict[str, gpd.GeoDataFrame]:
    """The demo county's parcels (true classes), samples, townships and sources."""
    demo = DEMO.parent
    truth = pd.read_csv(demo / "truth" / "expected_classes.csv", dtype={"BSM": str})
    parcels = classified(gpd.read_file(DEMO), truth=truth.set_index("BSM")["expected_class"])
    soil = pd.read_csv(demo / "soil_samples.csv", encoding="utf-8-sig")
    samples = gpd.GeoDataFrame({"sample_id": soil["样品编号"], "ph": soil["pH"], "cd": soil["镉"]},
                               geometry=gpd.points_from_xy(soil["X"], soil["Y"]), crs=parcels.crs)
    hit = gpd.sjoin(samples, parcels[["final_class", "geometry"]], how="left", predicate="within")
    samples["point_class"] = hit.groupby(level=0)["final_class"].first().astype("Int8")
    towns = gpd.read_file(demo / "townships.gpkg", layer="townships")
    towns = towns.rename(columns={"XZQMC": "township", "XZQDM": "township_code"})
    src = gpd.read_file(demo / "pollution_sources.geojson")
    sources = gpd.GeoDataFrame({"name": src["企业名称"], "industry": src["行业"],
                                "metals": src["特征污染物"]}, geometry=src.geometry, crs=src.crs)
    return {"parcels": parcels, "samples": samples, "townships": towns, "sources": sources}


def synthetic_layers(n: int) -> dict[str, gpd.GeoDataFrame]:
    """Synthetic parcels, samples and township outlines."""
    parcels = classified(synthetic_parcels(n))
    return {"parcels": parcels, "samples": soil_samples(parcels),
            "townships": township_outlines(parcels)}


def render_times(path: Path, repeats: int, screenshot: Path | None) -> list[float]:
    """Milliseconds until the parcel layer is painted, per page load (network blocked)."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for i in range(repeats):
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
                ("file:", "data:")) else r.abort())
            page.goto(path.as_uri(), timeout=120_000)
            page.wait_for_function("window.farmland && window.farmland.drawnAt", timeout=120_000)
            times.append(page.evaluate("farmland.drawnAt"))
            if screenshot is not None and i == repeats - 1:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                _optimise_png(screenshot)
            page.close()
        browser.close()
    return times


def _optimise_png(path: Path) -> None:
    from PIL import Image

    img = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)


def folium_default_size(parcels: gpd.GeoDataFrame, folder: Path) -> float:
    """MB of the same parcels as a plain folium GeoJson (style_function + GeoJsonTooltip)."""
    import folium

    from farmland.classes import colour

    shown = parcels[["parcel_id", "township", "landuse", "final_class", "area_mu", "rule",
                     "driving_element", "sample_ids", "geometry"]].copy()
    shown["final_class"] = shown["final_class"].astype("float")
    shown["geometry"] = shown.geometry.simplify(5.0)
    m = folium.Map(prefer_canvas=True)
    folium.GeoJson(shown.to_crs(4326), style_function=lambda f: {
        "fillColor": colour(f["properties"]["final_class"]), "weight": 0.4},
        tooltip=folium.GeoJsonTooltip(["parcel_id", "township", "rule"])).add_to(m)
    path = folder / "folium_default.html"
    m.save(str(path))
    return path.stat().st_size / 1e6


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_pages(gpkg: Path, measures: Path | None, province: bool, repeats: int,
              workers: int = 1) -> None:
    """``farmland map`` on a classification (e.g. of ``make_province.py``): the single page
    (default layers), or with ``province`` the overview and the county pages; sizes, write
    time (wall and CPU) and render times (median of ``repeats`` loads; for the county pages
    the largest one)."""
    import os

    from farmland.cli.map import ALL_LAYERS, read_map_layers
    from farmland.maps.page import make_map, save_map

    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    t0, c0 = time.perf_counter(), _cpu()
    if not province:
        frames = read_map_layers(gpkg, set(ALL_LAYERS), {})
        print(f"read {time.perf_counter() - t0:.1f} s; layers: "
              + ", ".join(f"{k} {len(v)}" for k, v in frames.items()))
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), _cpu()
            path = save_map(make_map(frames.pop("parcels"), **frames), Path(tmp) / "map.html")
            print(f"single page: write {time.perf_counter() - t0:.1f} s "
                  f"(CPU {_cpu() - c0:.1f} s), {path.stat().st_size / 1e6:.2f} MB")
            _print_render("single page", render_times(path, repeats, None))
        return
    from farmland.cli.rate import rate_settings
    from farmland.io.readers import read_measures
    from farmland.maps.overview import write_province_maps
    from farmland.runs.folder import read_classification

    parcels, crops, manifest = read_classification(gpkg)
    overlays = read_map_layers(gpkg, set(ALL_LAYERS), {}, with_parcels=False)
    ledger = read_measures(measures) if measures else None
    mode, min_samples = rate_settings(manifest)
    print(f"read {time.perf_counter() - t0:.1f} s; {len(parcels)} parcels; overlays: "
          + ", ".join(f"{k} {len(v)}" for k, v in overlays.items()))
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu()
        done = write_province_maps(parcels, Path(tmp) / "province.html", overlays=overlays,
                                   measures=ledger, crops=crops,
                                   rate_options={"accounting": mode,
                                                 "min_township_samples": min_samples},
                                   workers=workers)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        sizes = {k: p.stat().st_size / 1e6 for k, p in done.counties.items()}
        print(f"overview + {len(sizes)} county pages ({workers} worker(s)): {wall:.1f} s "
              f"(CPU of this process {cpu:.1f} s); "
              + ", ".join(f"{k} {v:.1f} s" for k, v in done.seconds.items()))
        print(f"overview: {done.overview.stat().st_size / 1e6:.2f} MB; county pages: "
              f"{sum(sizes.values()):.1f} MB in all, largest {max(sizes.values()):.2f} MB")
        _print_render("overview", render_times(done.overview, repeats, None))
        big = max(sizes, key=sizes.get)
        _print_render(f"largest county page ({big})",
                      render_times(done.counties[big], repeats, None))


def _print_render(what: str, times: list[float]) -> None:
    print(f"{what} render ms: " + ", ".join(f"{t:.0f}" for t in times)
          + f" | median {statistics.median(times) / 1000:.2f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=None,
                    help="use N synthetic parcels even if the demo county exists")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compare-folium", action="store_true")
    ap.add_argument("--no-screenshot", action="store_true")
    ap.add_argument("--classification", type=Path, default=None,
                    help="map this classification.gpkg as 'farmland map' does (single page)")
    ap.add_argument("--province", action="store_true",
                    help="with --classification: the overview page and the county pages")
    ap.add_argument("--measures", type=Path, default=None,
                    help="with --province: measures ledger for the rates")
    ap.add_argument("--workers", type=int, default=1,
                    help="with --province: processes writing the county pages")
    args = ap.parse_args(argv)
    if args.classification is not None:
        run_pages(args.classification, args.measures, args.province, args.repeats,
                  args.workers)
        return 0
    from farmland.maps.page import make_map, save_map

    t0 = time.perf_counter()
    if args.synthetic is None and DEMO.exists():
        layers, source = demo_layers(), f"demo county ({DEMO.relative_to(ROOT)}, true classes)"
    else:
        n = args.synthetic or 30_000
        layers, source = synthetic_layers(n), f"synthetic coverage ({n} requested)"
    prep = time.perf_counter() - t0
    parcels, samples = layers["parcels"], layers["samples"]
    rate = {"rate": 0.897, "target": 0.91, "gap_mu": 1234.5}  # illustrative figures
    t0 = time.perf_counter()
    fmap = make_map(layers.pop("parcels"), **layers, rate=rate,
                    title="示范县耕地土壤环境质量类别图 Demo county: farmland soil classes")
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = save_map(fmap, Path(tmp) / "county.html")
        save = time.perf_counter() - t0
        size = path.stat().st_size / 1e6
        times = render_times(path, args.repeats, None if args.no_screenshot else SCREENSHOT)
        plain = folium_default_size(parcels, Path(tmp)) if args.compare_folium else None
    verts = int(shapely.get_num_coordinates(parcels.geometry.to_numpy()).sum())
    print(f"parcels: {len(parcels)} from {source}; {verts} vertices; samples: {len(samples)}")
    print(f"prepare {prep:.1f} s | make_map {build:.1f} s | save_map {save:.1f} s")
    print(f"file size: {size:.2f} MB")
    print("render ms: " + ", ".join(f"{t:.0f}" for t in times)
          + f" | median {statistics.median(times) / 1000:.2f} s")
    if plain is not None:
        print(f"plain folium GeoJson of the same parcels (5 m simplify): {plain:.2f} MB")
    if not args.no_screenshot:
        print(f"screenshot: {SCREENSHOT.relative_to(ROOT)} ({SCREENSHOT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
