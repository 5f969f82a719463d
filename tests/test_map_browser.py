"""farmland maps in real headless Chromium, offline (every non-file request is aborted).

Needs Debian's /usr/bin/chromium (``.ci/install_chromium.sh``): skipped locally when it
is missing, a failure when ``CI`` is set. Fixture: 20 × 10 parcels of 100 m × 100 m in
EPSG:4545 with every overlay, and an attribute ``<img src=x onerror=alert(1)>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from farmland.classes import PALETTE
from farmland.maps.page import make_map, save_map

CHROMIUM = Path("/usr/bin/chromium")
X0, Y0 = 620_000.0, 2_722_000.0
EVIL = "<img src=x onerror=alert(1)>"
NAMES = ["乡镇边界 Townships", "耕地图斑 Parcels", "严格管控区 Strict-control zones",
         "数据稀疏标记 Sparse-data flags", "土壤样点 Soil samples", "农产品样点 Crop samples",
         "污染源 Pollution sources", "加密采样点 Planned sampling points", "乡镇名称 Township names"]


def _require_chromium():
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "python playwright is not installed"
    if problem is None and not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (run .ci/install_chromium.sh)"
    if problem and os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {problem}")
    if problem:
        pytest.skip(problem)


def cell(i: int, j: int, size: float = 100.0) -> shapely.Polygon:
    return shapely.box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size, Y0 + (j + 1) * size)


def pts(xy, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(*zip(*xy)), crs="EPSG:4545")


def polygons(geoms, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4545")


def county() -> dict:
    """200 parcels (class = 1 + column % 3, last column unclassified) and all overlays."""
    geoms, rows = [], []
    for j in range(10):
        for i in range(20):
            k = j * 20 + i
            geoms.append(cell(i, j))
            rows.append({"parcel_id": EVIL if k == 45 else f"P{k:03d}",
                         "township": "清水镇" if i < 10 else EVIL, "landuse": "paddy",
                         "dlbm": "0101", "final_class": None if i == 19 else 1 + i % 3,
                         "area_mu": 15.0, "rule": "points:majority", "driving_element": "cd",
                         "sample_ids": "S1,S2", "p_class_1": 0.1, "p_class_2": 0.7,
                         "p_class_3": 0.2, "measures": "lime"})
    parcels = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4545")
    parcels["final_class"] = parcels["final_class"].astype("Int8")
    return {
        "parcels": parcels,
        "samples": pts([(X0 + 50 + 200 * i, Y0 + 950) for i in range(10)],
                       sample_id=[f"S{i}" for i in range(10)], ph=6.1, cd=0.25,
                       point_class=pd.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 1], dtype="Int8")),
        "crops": pts([(X0 + 150 + 300 * i, Y0 + 850) for i in range(5)],
                     sample_id=[f"C{i}" for i in range(5)], crop="rice",
                     exceeds=[True, False, False, True, False]),
        "zones": polygons([shapely.box(X0 + 200, Y0, X0 + 300, Y0 + 1000)], zone_id=["SC001"],
                          township=["清水镇"], area_mu=[150.0], n_samples=[2],
                          driving_elements=["cd"]),
        "flags": polygons([shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
                           shapely.Point(X0 + 1950, Y0 + 550)],
                          reason=["no sample in 1 km cell", "unclassified parcel"]),
        "plan": pts([(X0 + 1450, Y0 + 450), (X0 + 1650, Y0 + 650)], point_id=["N1", "N2"],
                    mode=["infill", "boundary"], reason=["gap", "near threshold"],
                    priority=[1, 2]),
        "sources": pts([(X0 - 200, Y0 + 500)], name=[EVIL], industry=["smelting"],
                       metals=["cd,pb"]),
        "townships": polygons([shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
                               shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000)],
                              township=["清水镇", EVIL]),
    }


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def map_file(tmp_path_factory) -> Path:
    data = county()
    fmap = make_map(data.pop("parcels"), **data, title=EVIL + " 演示县",
                    rate={"rate": 0.897, "target": 0.91, "gap_mu": 1234.5})
    return save_map(fmap, tmp_path_factory.mktemp("map") / "county.html")


class Page:
    """A page opened offline, recording errors, dialogs and attempted network requests."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1200, "height": 800})
        self.errors, self.dialogs, self.requests = [], [], []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.farmland && window.farmland.drawnAt", timeout=10_000)

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def parcel_point(self, parcel_id: str) -> tuple[float, float]:
        """Page pixel of the centre of parcel ``parcel_id``."""
        xy = self.page.evaluate("""(pid) => {
            const g = farmland.layers.parcels;
            const lyr = g.getLayers().find(l => l._flCols.parcel_id[l._flIndex] === pid);
            const p = farmland.map.latLngToContainerPoint(lyr.getCenter());
            const r = farmland.map.getContainer().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""", parcel_id)
        return xy[0], xy[1]


@pytest.fixture(scope="module")
def page(browser, map_file):
    p = Page(browser, map_file)
    yield p
    p.page.close()


def test_opens_offline_without_errors_or_requests(page):
    assert page.errors == []
    assert page.requests == []
    assert page.page.evaluate("farmland.counts") == {
        "townships": 2, "parcels": 200, "zones": 1, "flags": 2, "samples": 10, "crops": 5,
        "sources": 1, "plan": 2, "labels": 2}
    assert page.page.evaluate("Object.keys(farmland.layers.parcels._layers).length") == 200
    assert page.page.evaluate("document.querySelectorAll('canvas.leaflet-zoom-animated').length") == 1


def test_parcels_are_drawn_in_their_class_colours(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "map.png"
    page.page.mouse.move(1, 799)  # no hover highlight
    page.page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(shot).convert("RGB")
    background = (0xF3, 0xF3, 0xEE)
    # parcel P103: column 3 -> class 1 (green); P104 class 2; P105 class 3; P139 unclassified
    for pid, code in (("P103", 1), ("P104", 2), ("P105", 3), ("P139", None)):
        x, y = page.parcel_point(pid)
        colour = PALETTE[code].lstrip("#")
        want = [0.78 * int(colour[k:k + 2], 16) + 0.22 * background[k // 2] for k in (0, 2, 4)]
        got = img.getpixel((round(x), round(y)))
        assert all(abs(g - w) <= 6 for g, w in zip(got, want, strict=True)), (pid, got, want)


def test_layer_control_lists_every_layer(page):
    text = page.page.inner_text(".leaflet-control-layers-overlays")
    assert [line.strip() for line in text.splitlines() if line.strip()] == NAMES


def hover_until(page, parcel_id: str, tries: int = 4) -> None:
    """Move the mouse onto ``parcel_id`` until the tooltip names it: on a loaded 2-core CI
    machine headless Chromium once let a 3 s wait pass without the tooltip's update, so
    the pointer is nudged by a pixel and the wait repeated (the tooltip must still name
    that parcel, not another)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    x, y = page.parcel_point(parcel_id)
    page.page.mouse.move(x, y, steps=4)
    check = f"document.querySelector('.leaflet-tooltip')?.textContent.includes('{parcel_id}')"
    for attempt in range(tries):
        try:
            page.page.wait_for_function(check, timeout=3_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.page.mouse.move(x + (attempt % 2 or -1), y, steps=2)


def test_hover_shows_tooltip_with_id_and_evil_text_stays_text(page):
    images = page.page.evaluate("document.getElementsByTagName('img').length")
    x, y = page.parcel_point(EVIL)
    page.page.mouse.move(x - 5, y - 5)
    page.page.mouse.move(x, y, steps=4)
    tip = page.page.wait_for_selector(".leaflet-tooltip", timeout=3_000)
    text = tip.inner_text()
    assert "图斑 Parcel: " + EVIL in text
    assert "乡镇 Township: 清水镇" in text
    assert "类别 Class: 严格管控类 Strict control" in text  # column 5: class 1 + 5 % 3 = 3
    assert "概率 P(1/2/3): 0.10 / 0.70 / 0.20" in text and "措施 Measures: lime" in text
    assert page.page.evaluate("document.getElementsByTagName('img').length") == images
    assert page.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.dialogs == []
    hover_until(page, "P046")


def test_title_legend_and_township_names_render_as_text(page):
    title = page.page.inner_text("#fl-title")
    assert EVIL + " 演示县" in title
    assert "89.7 %" in title and "差距 gap 1,234.5 亩" in title
    legend = page.page.inner_text("#fl-legend")
    # 200 parcels × 15 亩; columns 0..18 cycle classes 1,2,3 (7,6,6 columns), column 19 grey
    assert "优先保护类\tPriority protection\t1,050.0 亩\t35.0 %" in legend
    assert "未分类\tUnclassified\t150.0 亩\t5.0 %" in legend
    assert page.page.evaluate("document.title") == EVIL + " 演示县"
    assert page.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0


def test_outlines_do_not_catch_the_hover_of_parcels_inside(page):
    # P042 lies inside the strict-control zone (x 200–300 m) and inside a township: both are
    # outlines drawn above / below the parcels and must only react on their line
    x, y = page.parcel_point("P042")
    page.page.mouse.move(x - 8, y - 8)
    hover_until(page, "P042")
    assert "管控区 Zone" not in page.page.inner_text(".leaflet-tooltip")


def test_click_opens_popup_with_the_same_rows(page):
    x, y = page.parcel_point("P120")
    page.page.mouse.click(x, y)
    popup = page.page.wait_for_selector(".leaflet-popup-content", timeout=3_000)
    assert "图斑 Parcel: P120" in popup.inner_text()
    # the tooltip said the same and stood over the popup: it stays closed while the popup
    # is open, also when the pointer moves on within the parcel
    page.page.mouse.move(x + 2, y + 1, steps=2)
    page.page.wait_for_timeout(300)
    assert page.page.evaluate("document.querySelectorAll('.leaflet-tooltip').length") == 0
    page.page.keyboard.press("Escape")
    page.page.evaluate("document.querySelector('.leaflet-popup-close-button')?.click()")
    page.page.wait_for_selector(".leaflet-popup-content", state="detached", timeout=3_000)
    page.page.mouse.move(x + 150, y + 150, steps=3)   # off the parcel, then back on it:
    hover_until(page, "P120")                           # closed, the tooltip is back


def test_page_with_tiles_still_works_when_tiles_fail(browser, tmp_path):
    data = county()
    fmap = make_map(data["parcels"], samples=data["samples"], tiles="osm")
    p = Page(browser, save_map(fmap, tmp_path / "tiles.html"))
    try:
        assert p.page.evaluate("farmland.counts.parcels") == 200
        assert not [e for e in p.errors if e.startswith("pageerror")]
        assert p.requests and all(u.startswith("https://tile.openstreetmap.org/")
                                  for u in p.requests)
        assert "OpenStreetMap" in p.page.inner_text(".leaflet-control-attribution")
    finally:
        p.page.close()


def test_view_fits_without_animation_and_outlines_follow_zoom(page):
    state = page.page.evaluate("""(() => {
        const m = farmland.map, g = farmland.layers.parcels, one = g.getLayers()[0];
        const out = {animating: Boolean(m._animatingZoom), zoom: m.getZoom(),
                     fits: m.getBounds().contains(g.getBounds()),
                     limits: [m.getMinZoom(), m.getMaxZoom()]};
        m.setZoom(25, {animate: false});
        out.deepest = m.getZoom();
        out.scale = document.querySelector(".leaflet-control-scale-line").textContent;
        m.setMinZoom(0);  // to see the sample dots at county scale
        const dot = farmland.layers.samples.getLayers()[0];
        out.radius = [];
        for (const z of [10, 12, 16]) {
            m.setView(m.getCenter(), z, {animate: false});
            out.radius.push(dot.options.radius);
            if (z === 12) { out.far = one.options.color; }
        }
        out.near = one.options.color;
        return out; })()""")
    # P000 is class 1: outlined in its own green far out, dark grey from zoom 15 on
    assert state["animating"] is False and state["fits"] is True
    assert state["zoom"] >= 15  # a 2 km × 1 km county fits at parcel scale
    # zoom out at most 2 levels from the fitted view, in to 19 (scale bar ≥ 10 m)
    assert state["limits"] == [state["zoom"] - 2, 19] and state["deepest"] == 19
    assert state["scale"] in ("10 m", "20 m")
    assert (state["far"], state["near"]) == (PALETTE[1], "#4d4d4d")
    assert state["radius"] == [2, 3, 5]  # sample dots: base, from zoom 12, from zoom 14


def test_toggling_layers_off_and_zooming_raises_no_error(browser, map_file):
    p = Page(browser, map_file)
    try:
        box = p.page.locator(".leaflet-control-layers-overlays label", has_text="耕地图斑 Parcels")
        box.locator("input").uncheck()
        assert p.page.evaluate("farmland.map.hasLayer(farmland.layers.parcels)") is False
        p.page.evaluate("farmland.map.setZoom(12, {animate: false}), null")
        box.locator("input").check()
        p.page.evaluate("farmland.map.setZoom(16, {animate: false}), null")
        assert p.page.evaluate("farmland.map.hasLayer(farmland.layers.parcels)") is True
        assert p.page.evaluate("farmland.layers.parcels.getLayers()[0].options.color") == "#4d4d4d"
        assert p.errors == []
    finally:
        p.page.close()


def test_township_labels_are_text_and_follow_zoom(browser, map_file):
    p = Page(browser, map_file)
    try:
        labels = p.page.locator(".fl-label span")
        assert sorted(labels.all_inner_texts()) == sorted(["清水镇", EVIL])
        assert p.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert p.page.is_visible(".fl-label span >> nth=0")
        # the 2 km fixture fits at zoom 15–16: lift maxZoom to see the far-in hiding
        p.page.evaluate("farmland.map.setMaxZoom(22), null")
        shown = p.page.evaluate("""[4, 3, -1, -2].map(dz => {
            farmland.map.setZoom(farmland.fitZoom + dz, {animate: false});
            return farmland.labelsShown; })""")
        assert shown == [False, True, True, False]
        assert not p.page.is_visible(".fl-label span >> nth=0")
        assert p.errors == [] and p.dialogs == []
    finally:
        p.page.close()


def test_change_map_hover_shows_the_flow(browser, tmp_path):
    from farmland.maps.diff import make_diff_map

    data = county()
    changed = data["parcels"].iloc[[45, 46, 47]].assign(
        flow=["1→2", "2→3", "3→unclassified"], cause=[EVIL, "new soil samples", "rule"],
        cause_detail=["TR0001", None, None])
    fmap = make_diff_map(changed, parcels=data["parcels"], townships=data["townships"])
    p = Page(browser, save_map(fmap, tmp_path / "diff.html"))
    try:
        assert p.page.evaluate("farmland.counts") == {
            "townships": 2, "parcels": 200, "changes": 3, "labels": 2}
        xy = p.page.evaluate("""(() => {
            const lyr = farmland.layers.changes.getLayers()[0];
            const pt = farmland.map.latLngToContainerPoint(lyr.getCenter());
            const r = farmland.map.getContainer().getBoundingClientRect();
            return [pt.x + r.left, pt.y + r.top]; })()""")
        p.page.mouse.move(xy[0] - 5, xy[1] - 5)
        p.page.mouse.move(xy[0], xy[1], steps=4)
        tip = p.page.wait_for_selector(".leaflet-tooltip", timeout=3_000).inner_text()
        assert "变化 Flow: 1→2（优先保护→安全利用 priority → safe use）" in tip
        assert "原因 Cause: " + EVIL in tip and "详情 Detail: TR0001" in tip
        legend = p.page.inner_text("#fl-legend")
        assert "安全利用→严格管控" in legend and "变为未分类" in legend
        assert p.errors == [] and p.requests == [] and p.dialogs == []
    finally:
        p.page.close()


def province(n_samples: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Two counties of 10 × 10 parcels of 1 km side by side (township codes 450101…,
    450102…, an evil township name in the first) and ``n_samples`` soil samples 100 m
    apart in the first."""
    parcels = county()["parcels"]
    parcels = parcels.set_geometry([cell(k % 20, k // 20, 1000.0) for k in range(200)])
    first = parcels.geometry.bounds["minx"] < X0 + 10_000
    parcels["township_code"] = ["450101001" if f else "450102001" for f in first]
    parcels["township"] = [EVIL if f else "乙镇" for f in first]
    parcels["parcel_id"] = [f"P{k:03d}" for k in range(len(parcels))]
    xy = [(X0 + 50 + 100 * (k % 99), Y0 + 50 + 100 * (k // 99)) for k in range(n_samples)]
    samples = pts(xy, sample_id=[f"S{k}" for k in range(n_samples)],
                  point_class=pd.array([1] * n_samples, dtype="Int8"))
    return parcels, samples


@pytest.fixture(scope="module")
def province_files(tmp_path_factory):
    from farmland.maps.layers import CLUSTER_MIN_POINTS
    from farmland.maps.overview import write_province_maps

    parcels, samples = province(CLUSTER_MIN_POINTS + 500)
    return write_province_maps(parcels, tmp_path_factory.mktemp("prov") / "prov.html",
                               overlays={"samples": samples})


def test_overview_opens_offline_and_links_to_the_county_page(browser, province_files):
    p = Page(browser, province_files.overview)
    try:
        assert p.errors == [] and p.requests == []
        counts = p.page.evaluate("farmland.counts")
        assert (counts["county_rate"], counts["county_lines"], counts["labels"]) == (2, 2, 2)
        assert p.page.evaluate("farmland.map.hasLayer(farmland.layers.county_rate)")
        assert not p.page.evaluate("farmland.map.hasLayer(farmland.layers.township_class)")
        legend = p.page.inner_text("#fl-legend")
        assert "达标 met: ≥ 91 %" in legend and "二三类占比" not in legend
        base = p.page.inner_text(".leaflet-control-layers-base")
        assert "县 · 安全利用率 Counties · safe-utilisation rate" in base
        images = p.page.evaluate("document.getElementsByTagName('img').length")
        x, y = p.page.evaluate("""() => {
            const lyr = farmland.layers.county_rate.getLayers()[0];
            const q = farmland.map.latLngToContainerPoint(lyr.getCenter());
            const r = farmland.map.getContainer().getBoundingClientRect();
            return [q.x + r.left, q.y + r.top];
        }""")
        p.page.mouse.click(x, y)
        link = p.page.wait_for_selector(".leaflet-popup-content a", timeout=3_000)
        assert link.get_attribute("href") == "prov_counties/450101.html"
        p.page.click(".leaflet-control-layers-base label:has-text('乡镇 · 二三类占比')")
        assert p.page.evaluate("farmland.map.hasLayer(farmland.layers.township_class)")
        legend = p.page.inner_text("#fl-legend")
        assert "二三类占比 class 2+3 share" in legend and "安全利用率" not in legend
        p.page.mouse.move(x - 5, y - 5)
        p.page.mouse.move(x, y, steps=4)
        tip = p.page.wait_for_selector(".leaflet-tooltip:has-text('乡镇 Township')",
                                       timeout=3_000)
        assert "乡镇 Township: " + EVIL in tip.inner_text()
        assert p.page.evaluate("document.getElementsByTagName('img').length") == images
        p.page.mouse.click(x, y)
        p.page.click(".leaflet-popup-content a")
        p.page.wait_for_function("window.farmland && window.farmland.drawnAt", timeout=10_000)
        assert p.page.url.endswith("/prov_counties/450101.html")
        assert p.errors == [] and p.dialogs == []
    finally:
        p.page.close()


def test_county_page_clusters_dense_samples_until_parcel_scale(browser, province_files):
    p = Page(browser, province_files.counties["450101"])
    try:
        assert p.errors == [] and p.requests == []
        assert p.page.evaluate("farmland.clustered") == ["samples"]
        assert p.page.evaluate("farmland.counts.samples") > 2_000
        # the 10 km county opens at zoom 13: points; zoomed out: clusters with their count
        assert p.page.evaluate("farmland.map.getZoom()") == 13
        assert p.page.evaluate("document.querySelectorAll('.marker-cluster').length") == 0
        p.page.evaluate("farmland.map.setZoom(11, {animate: false}) && 0")
        p.page.wait_for_timeout(300)
        counts = p.page.evaluate("Array.from(document.querySelectorAll('.marker-cluster'))"
                                 ".map(e => +e.innerText)")
        assert len(counts) > 1 and sum(counts) == p.page.evaluate("farmland.counts.samples")
        p.page.evaluate("farmland.map.setZoom(14, {animate: false}) && 0")
        p.page.wait_for_timeout(300)
        assert p.page.evaluate("document.querySelectorAll('.marker-cluster').length") == 0
        assert p.errors == []
    finally:
        p.page.close()
