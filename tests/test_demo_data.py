"""The bundled synthetic demo county: reproducible from its seed, and shaped as documented.

``data/make_demo.py`` regenerates ``data/demo`` (about 10-15 s); the other tests read
the committed files. Numbers asserted here are the ranges promised in ``data/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from farmland import standards

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
DEMO = DATA / "demo"
MU_M2 = 10_000 / 15
BOM = b"\xef\xbb\xbf"
SOIL_HEADER = "样品编号,X,Y,pH,镉,汞,砷,铅,铬,铜,镍,锌,采样年份,调查类型"
CROP_HEADER = "样品编号,X,Y,作物,镉,铅,汞,砷,铬,采样年份"
MEASURE_HEADER = "图斑编号,措施类型,措施类别,年度"
CSV_HEADERS = {
    "soil_samples.csv": SOIL_HEADER,
    "crop_samples.csv": CROP_HEADER,
    "measures_2023.csv": MEASURE_HEADER,
    "resample_2024/soil_samples.csv": SOIL_HEADER,
    "resample_2024/crop_samples.csv": CROP_HEADER,
    "resample_2024/measures_2024.csv": MEASURE_HEADER,
    "wind_rose.csv": "风向,频率,平均风速",
    "truth/source_causes.csv": (
        "cause_id,cause_type,enterprise_id,x,y,added_cd_mg_kg,description_zh,description_en"
    ),
}
# GB 2762 limits (mg/kg) of the three demo crops, element order Cd, Pb, Hg, As, Cr
CROP_LIMITS = {
    "稻谷": (0.2, 0.2, 0.02, 0.35, 1.0),
    "玉米": (0.1, 0.2, 0.02, 0.5, 1.0),
    "叶菜类": (0.2, 0.3, 0.01, 0.5, 0.5),
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_demo", DATA / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def checksums() -> dict:
    return json.loads((DEMO / "CHECKSUMS.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory, checksums) -> Path:
    """Run the generator with the committed seed into a temporary folder, refreshing a
    copy of the README there."""
    tmp = tmp_path_factory.mktemp("regen")
    shutil.copy(DATA / "README.md", tmp / "README.md")
    argv = [
        "--seed",
        str(checksums["seed"]),
        "--out",
        str(tmp / "demo"),
        "--readme",
        str(tmp / "README.md"),
    ]
    assert gen.main(argv) == 0
    return tmp


@pytest.fixture(scope="module")
def parcels() -> gpd.GeoDataFrame:
    return gpd.read_file(DEMO / "parcels.gpkg", layer="DLTB")


@pytest.fixture(scope="module")
def townships() -> gpd.GeoDataFrame:
    return gpd.read_file(DEMO / "townships.gpkg", layer="townships")


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return pd.read_csv(DEMO / "truth" / "expected_classes.csv", dtype={"BSM": str})


def _csv(rel: str) -> pd.DataFrame:
    return pd.read_csv(DEMO / rel, dtype=str, encoding="utf-8-sig")


def _points(df: pd.DataFrame) -> gpd.GeoDataFrame:
    xy = df[["X", "Y"]].astype(float)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(xy["X"], xy["Y"]), crs="EPSG:4545")


# --------------------------------------------------------------------------- reproducibility
def _same_versions(checksums: dict) -> bool:
    return checksums["versions"] == gen.library_versions()


def test_regenerated_content_hashes_equal_committed(regenerated, checksums):
    if not _same_versions(checksums):
        pytest.skip(f"library versions differ from the recorded {checksums['versions']}")
    fresh = json.loads((regenerated / "demo" / "CHECKSUMS.json").read_text(encoding="utf-8"))
    assert fresh["files"] == checksums["files"]


def test_regenerated_readme_blocks_equal_committed_readme(regenerated, checksums):
    if not _same_versions(checksums):
        pytest.skip(f"library versions differ from the recorded {checksums['versions']}")
    assert (regenerated / "README.md").read_text(encoding="utf-8") == (
        DATA / "README.md"
    ).read_text(encoding="utf-8")


def test_committed_files_match_their_content_hashes(checksums):
    on_disk = {rel: gen.content_hash(DEMO / rel) for rel in checksums["files"]}
    assert on_disk == checksums["files"]


def test_readme_lists_every_content_hash(checksums):
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for rel, digest in checksums["files"].items():
        assert f"| `{rel}` | `{digest}` |" in readme


def test_content_hash_ignores_geopackage_timestamps_but_not_attributes(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"BSM": ["b", "a"], "v": [1.0, 2.0]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        crs="EPSG:4545",
    )
    gen.write_gpkg({"L": gdf}, tmp_path / "one.gpkg")
    gen.write_gpkg({"L": gdf.iloc[::-1]}, tmp_path / "two.gpkg")  # other row order, other timestamp
    gen.write_gpkg({"L": gdf.assign(v=[1.0, 2.5])}, tmp_path / "three.gpkg")
    assert gen.content_hash(tmp_path / "one.gpkg") == gen.content_hash(tmp_path / "two.gpkg")
    assert gen.content_hash(tmp_path / "one.gpkg") != gen.content_hash(tmp_path / "three.gpkg")


# --------------------------------------------------------------------------- files
def test_total_size_under_20_mb():
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 20 * 1024 * 1024


@pytest.mark.parametrize("rel", sorted(CSV_HEADERS))
def test_csv_has_bom_and_exact_header(rel):
    raw = (DEMO / rel).read_bytes()
    assert raw.startswith(BOM)
    assert raw[len(BOM) :].decode("utf-8").split("\n", 1)[0] == CSV_HEADERS[rel]


@pytest.mark.parametrize(
    ("file", "layer"),
    [
        ("parcels.gpkg", "DLTB"),
        ("townships.gpkg", "townships"),
        ("townships.gpkg", "county"),
        ("townships.gpkg", "rivers"),
        ("rivers.gpkg", "rivers"),
        ("rivers.gpkg", "outfalls"),
        ("geology.gpkg", "geology"),
        ("truth/source_areas.gpkg", "areas"),
    ],
)
def test_geopackage_layers_are_epsg_4545(file, layer):
    assert pyogrio.read_info(DEMO / file, layer=layer)["crs"] == "EPSG:4545"


def test_every_demo_file_is_in_the_checksums(checksums):
    on_disk = {p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*") if p.is_file()}
    assert on_disk - {"CHECKSUMS.json"} == set(checksums["files"])


def test_source_layers_are_small():
    for rel in ("rivers.gpkg", "geology.gpkg", "wind_rose.csv", "truth/source_areas.gpkg",
                "truth/source_causes.csv"):
        assert (DEMO / rel).stat().st_size < 1024 * 1024, rel


def test_cd_parts_add_up_to_the_model_cd():
    """The truth of the Cd causes (data/demo_sources.py) splits exactly the Cd the samples
    are drawn from."""
    rng = np.random.default_rng(7)
    centre = (600_000.0, 2_720_000.0)
    xy = centre + np.c_[np.linspace(0, 3000, 151), 40 * np.sin(np.linspace(0, 9, 151))]
    river = gen._river("R", xy, 100, 300, (gen.smooth_field(rng, 5000, centre),) * 2, channel=20)
    plant = gen.Enterprise("P", "电镀", "Cd", xy[30] + (0, 150), river.direction[30], 1.2, 400,
                           0, 30)
    model = gen.soil_model(rng, gen.smooth_field(rng, 3000, centre), [plant], [river], centre)
    x, y = rng.uniform(599_000, 604_000, 500), rng.uniform(2_718_000, 2_722_000, 500)
    parts = model.cd_parts(x, y)
    assert set(parts) == {"background", "E01", "IRR", "red_soil"}
    np.testing.assert_array_equal(parts["background"] + parts["E01"] + parts["IRR"],
                                  model.concentrations(x, y)["cd"])
    kw = model.karst_weight(x, y)
    assert np.all((parts["background"] >= parts["red_soil"]) | (kw < 1e-9))


def test_pollution_sources_are_rfc7946_lonlat():
    fc = json.loads((DEMO / "pollution_sources.geojson").read_text(encoding="utf-8"))
    assert "crs" not in fc
    assert len(fc["features"]) == 6
    lon, lat = np.array([f["geometry"]["coordinates"] for f in fc["features"]]).T
    assert np.all(np.abs(lon - 109.2) < 0.35) and np.all(np.abs(lat - 24.6) < 0.35)
    props = [f["properties"] for f in fc["features"]]
    assert all({"企业名称", "行业", "特征污染物"} <= set(p) for p in props)
    assert all("Cd" in p["特征污染物"].split(",") for p in props)


# --------------------------------------------------------------------------- parcels and townships
def test_counts_within_documented_ranges(parcels, townships):
    assert 27_000 <= len(parcels) <= 33_000
    assert len(townships) == 13
    assert 1_400 <= len(_csv("soil_samples.csv")) <= 1_600
    assert 350 <= len(_csv("crop_samples.csv")) <= 450
    assert 100 <= len(_csv("resample_2024/soil_samples.csv")) <= 140
    assert 130 <= len(_csv("resample_2024/crop_samples.csv")) <= 170


def test_landuse_area_shares(parcels):
    share = parcels.groupby("DLBM")["TBDLMJ"].sum() / parcels["TBDLMJ"].sum()
    assert set(share.index) == {"0101", "0102", "0103", "0201"}
    assert 0.50 <= share["0101"] <= 0.60
    assert 0.30 <= share["0102"] + share["0103"] <= 0.40
    assert 0.07 <= share["0201"] <= 0.13
    names = {"0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园"}
    assert (parcels["DLMC"] == parcels["DLBM"].map(names)).all()


def test_parcel_sizes_in_mu(parcels):
    mu = parcels.area.to_numpy() / MU_M2
    assert 2.5 <= np.median(mu) <= 3.5
    assert mu.min() >= 0.199
    assert (mu > 40).mean() < 0.001
    ratio = parcels["TBDLMJ"].to_numpy() / parcels.area.to_numpy()
    assert ratio.min() >= 0.92 - 1e-4 and ratio.max() <= 1.0 + 1e-4


def test_parcel_ids_and_codes(parcels, townships):
    assert parcels["BSM"].is_unique
    assert (parcels["BSM"].str.len() == 18).all()
    assert (parcels["BSM"].str[:9] == parcels["XZQDM"]).all()
    assert parcels["ZLDWDM"].str.fullmatch(r"\d{19}").all()
    assert (parcels["ZLDWDM"].str[:9] == parcels["XZQDM"]).all()
    assert parcels["ZLDWDM"].str.endswith("0000000").all()
    names = dict(zip(townships["XZQDM"], townships["XZQMC"]))
    assert (parcels["XZQMC"] == parcels["XZQDM"].map(names)).all()


def test_parcels_are_an_exact_coverage(parcels):
    geoms = parcels.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()
    assert shapely.coverage_is_valid(geoms)


def test_every_parcel_in_the_county_and_exactly_one_township(parcels, townships):
    county = gpd.read_file(DEMO / "townships.gpkg", layer="county").geometry.iloc[0]
    assert shapely.coverage_is_valid(townships.geometry.values)
    assert shapely.union_all(townships.geometry.values).symmetric_difference(county).area < 1.0
    assert shapely.covered_by(parcels.geometry.values, county.buffer(0.01)).all()
    own = townships.set_index("XZQDM").geometry.buffer(0.01)
    assert shapely.covered_by(parcels.geometry.values, own.loc[parcels["XZQDM"]].values).all()
    rep = gpd.GeoDataFrame(
        parcels[["BSM", "XZQDM"]], geometry=parcels.representative_point(), crs=parcels.crs
    )
    hits = gpd.sjoin(rep, townships, predicate="within")
    assert len(hits) == len(parcels) and hits["BSM"].is_unique
    assert (hits["XZQDM_left"] == hits["XZQDM_right"]).all()


# --------------------------------------------------------------------------- samples
def test_sample_ids_unique_across_years():
    soil = pd.concat([_csv("soil_samples.csv"), _csv("resample_2024/soil_samples.csv")])
    crops = pd.concat([_csv("crop_samples.csv"), _csv("resample_2024/crop_samples.csv")])
    assert soil["样品编号"].is_unique and soil["样品编号"].str.fullmatch(r"TR\d{4}").all()
    assert crops["样品编号"].is_unique and crops["样品编号"].str.fullmatch(r"NP\d{4}").all()


def test_soil_values_plausible_with_censored_mercury():
    soil = _csv("soil_samples.csv")
    ph = soil["pH"].astype(float)
    assert ph.between(4.5, 8.5).all() and ph.min() < 5.0 and ph.max() > 7.8
    assert {"ND", "<0.01"} <= set(soil["汞"])
    for col in ("镉", "砷", "铅", "铬", "铜", "镍", "锌"):
        assert (soil[col].astype(float) > 0).all()
    assert (soil["铜"].astype(float) > 50).any() and (soil["锌"].astype(float) > 200).any()
    assert set(soil["调查类型"]) == {"详查", "加密"}
    assert set(soil["采样年份"]) == {"2019", "2020", "2021"}


def test_most_soil_samples_inside_parcels(parcels):
    hits = gpd.sjoin(
        _points(_csv("soil_samples.csv")),
        parcels[["BSM", "geometry"]],
        predicate="within",
        how="left",
    )
    assert 0.95 <= hits["BSM"].notna().mean() < 1.0


def _documented_under_sampled() -> set[str]:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- BEGIN GENERATED: townships -->")[1].split(
        "<!-- END GENERATED: townships -->"
    )[0]
    return set(re.findall(r"^\| (\d{9}) \|.*\(under-sampled\)", block, flags=re.MULTILINE))


def test_two_documented_townships_are_under_sampled(parcels, townships):
    documented = _documented_under_sampled()
    assert documented == {"450299204", "450299400"}
    hits = gpd.sjoin(_points(_csv("soil_samples.csv")), townships, predicate="within")
    farm_km2 = parcels.groupby("XZQDM")["TBDLMJ"].sum() / 1e6
    density = (
        hits.groupby("XZQDM").size().reindex(farm_km2.index).fillna(0) / farm_km2
    ).sort_values()
    assert set(density.index[:2]) == documented
    others = density.drop(list(documented))
    assert density[list(documented)].max() <= 0.3 * others.median()


# --------------------------------------------------------------------------- classes, crops, ledger
def test_expected_class_shares(parcels, truth):
    area = parcels.set_index("BSM")["TBDLMJ"]
    share = area.groupby(truth.set_index("BSM")["expected_class"]).sum() / area.sum()
    assert 0.70 <= share[1] <= 0.80
    assert 0.15 <= share[2] <= 0.25
    assert 0.03 <= share[3] <= 0.06


def _crop_units(rel: str, parcels: gpd.GeoDataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Crop grade per sample (<= limit 1, <= 2x limit 2, else 3) joined to its parcel."""
    crops = _csv(rel)
    values = crops[["镉", "铅", "汞", "砷", "铬"]].replace("ND", "0").astype(float).to_numpy()
    limits = np.array([CROP_LIMITS[c] for c in crops["作物"]])
    grade = np.where(values <= limits, 1, np.where(values <= 2 * limits, 2, 3)).max(axis=1)
    hits = gpd.sjoin(_points(crops), parcels[["BSM", "DLBM", "geometry"]], predicate="within")
    hits["grade"] = grade[hits.index]
    return hits.merge(truth[["BSM", "expected_class"]], on="BSM")


def test_crops_grow_on_matching_landuse(parcels, truth):
    hits = _crop_units("crop_samples.csv", parcels, truth)
    assert (hits.loc[hits["作物"] == "稻谷", "DLBM"] == "0101").all()
    assert hits.loc[hits["作物"] != "稻谷", "DLBM"].isin(["0102", "0103"]).all()


@pytest.mark.parametrize("rel", ["crop_samples.csv", "resample_2024/crop_samples.csv"])
def test_crop_adjustment_has_cases_to_act_on(rel, parcels, truth):
    hits = _crop_units(rel, parcels, truth)
    units = hits.groupby("BSM").agg(
        n=("grade", "size"),
        cls=("expected_class", "first"),
        compliant=("grade", lambda g: (g == 1).mean()),
        worst=("grade", "max"),
    )
    units = units[units["n"] >= 3]
    assert len(units) >= 20
    assert ((units["cls"] == 3) & (units["compliant"] >= 0.65) & (units["worst"] < 3)).sum() >= 2
    assert ((units["cls"] == 2) & (units["worst"] == 1)).sum() >= 5
    assert ((hits["expected_class"] == 1) & (hits["grade"] > 1)).sum() >= 2


def test_ledger_2023_planted_errors(parcels, truth):
    ledger = _csv("measures_2023.csv")
    assert set(ledger["年度"]) == {"2023"}
    # the rate itself depends on the classes farmland gives: tests/test_demo_run.py checks it
    ghosts = set(ledger["图斑编号"]) - set(parcels["BSM"])
    assert len(ghosts) == 3
    known = ledger[~ledger["图斑编号"].isin(ghosts)]
    assert (known["图斑编号"].value_counts() >= 2).sum() >= 50
    kinds = {
        "安全利用": {"低积累品种替代", "水分调控", "施用石灰", "叶面阻控"},
        "严格管控": {"种植结构调整", "特定农产品禁止生产区", "退耕还林还草", "休耕"},
    }
    assert all(t in kinds[c] for t, c in zip(ledger["措施类型"], ledger["措施类别"]))


def test_ledger_2024_reaches_target(parcels, truth):
    ledger = _csv("resample_2024/measures_2024.csv")
    assert set(ledger["年度"]) == {"2024"}
    assert ledger["图斑编号"].isin(parcels["BSM"]).all()


def test_generator_thresholds_agree_with_farmland_standards(parcels, truth):
    std = standards.load_standard()
    ph = truth["ph"].to_numpy()
    band = np.searchsorted(gen.PH_EDGES, ph, side="left")
    landuse = np.array([standards.landuse_from_dlbm(code) for code in parcels["DLBM"]])
    paddy = (parcels["DLBM"] == "0101").to_numpy()
    for el, (rice, other) in gen.SCREENING.items():
        mine = np.where(paddy, np.take(rice, band), np.take(other, band))
        np.testing.assert_allclose(mine, std.screening_values(el, landuse, ph))
        np.testing.assert_allclose(
            np.take(gen.INTERVENTION[el], band), std.intervention_values(el, ph)
        )
