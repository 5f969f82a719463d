"""Incremental re-classification (issue 19 item 2, :mod:`farmland.runs.incremental`).

- the reach bound on a hand-built line of samples, and that it never misses a parcel whose
  cells' k nearest samples change (seeded random counties, neighbourhoods searched
  directly);
- incremental = full, layer for layer, on the demo county 2023 → 2024 (120 new soil
  samples, 2024 crop samples) and on a small county with removed, changed and added
  samples, village evaluation units and crop samples;
- when it does not apply (a variogram refitted, other rules, ``--full``);
- the leave-one-out moments reused from the previous run where no change reaches (a
  hand-counted line of samples, random sets against a full leave-one-out, and a whole
  run whose kept moments equal a full run's).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import make_parcels, make_samples, run_cli
from scipy.spatial import cKDTree

from farmland.classify.interpolated import parcel_cells
from farmland.geostats.anisotropy import kriging_space
from farmland.geostats.crossval import leave_one_out_reusing
from farmland.geostats.estimators import LocalKriging
from farmland.geostats.variogram import VariogramModel
from farmland.runs.incremental import affected_parcels, changed_samples
from farmland.runs.loo_memory import read_loo_memories

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
LAYERS = ("parcels", "samples", "crops", "outliers")


def _keys(xy: np.ndarray, ids: list[str], values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": ids, "x": xy[:, 0], "y": xy[:, 1], "usable": True,
                         "cd": values})


# --------------------------------------------------------------------------- the bound


def test_reach_bound_on_a_line_of_samples():
    """Samples every 100 m on y = 0; a 10 m parcel centred on (500, 0): h = 5√2 = 7.07 m,
    its 2nd nearest unchanged sample is 100 m away, so a changed sample reaches it within
    100 + 2h = 114.14 m of the centre: one at (610, 0) (110 m) does, one at (620, 0)
    (120 m) does not."""
    xy = np.column_stack([np.arange(0, 1001, 100.0), np.zeros(11)])
    unchanged = _keys(xy, [f"S{i}" for i in range(11)], np.ones(11))
    parcel = np.array([shapely.box(495, -5, 505, 5)])
    for x, reached in ((610.0, True), (614.0, True), (615.0, False), (620.0, False)):
        hit = affected_parcels(parcel, np.array([[x, 0.0]]), unchanged, k=2, k_evidence=1)
        assert hit.tolist() == [reached], x
    # no change reaches nothing; a change inside the parcel always reaches it
    assert not affected_parcels(parcel, np.empty((0, 2)), unchanged, k=2, k_evidence=1).any()
    assert affected_parcels(parcel, np.array([[2000.0, 0.0]]), unchanged.iloc[:1], k=2,
                            k_evidence=1).all()  # fewer unchanged samples than k


def test_changed_samples_counts_added_removed_and_changed():
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    old = _keys(xy, ["A", "B", "C"], np.array([0.2, 0.3, 0.4]))
    new = _keys(np.array([[0.0, 0.0], [100.0, 0.0], [300.0, 0.0]]), ["A", "B", "D"],
                np.array([0.2, 0.35, 0.5]))  # B changed, C removed, D added
    moved, unchanged, counts = changed_samples(old, new)
    assert counts == {"added": 1, "removed": 1, "changed": 1}
    assert unchanged["sample_id"].tolist() == ["A"]
    assert sorted(map(tuple, moved.tolist())) == [(100.0, 0.0), (100.0, 0.0), (200.0, 0.0),
                                                  (300.0, 0.0)]


def _changed_county(seed: int):
    """300 random samples and 150 m parcels on a 200 m grid; S0, S1 removed, S2, S3 moved
    up to 200 m, N0, N1 added: ``(xy, ids, old, new, parcels)``."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 6000, (300, 2))
    ids = [f"S{i}" for i in range(300)]
    old = _keys(xy, ids, rng.lognormal(size=300))
    new = old.drop(index=range(2)).copy()
    new.loc[2:3, ["x", "y"]] += rng.uniform(-200, 200, (2, 2))
    added = _keys(rng.uniform(0, 6000, (2, 2)), [f"N{i}" for i in range(2)], np.ones(2))
    new = pd.concat([new, added], ignore_index=True)
    geoms = np.array([shapely.box(x, y, x + 150, y + 150)
                      for x in range(0, 6000, 200) for y in range(0, 6000, 200)])
    return xy, ids, old, new, geoms


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reach_bound_never_misses_a_changed_neighbourhood(seed):
    """Random samples and 150 m parcels; 2 samples removed, 2 moved, 2 added. Every parcel
    with a cell (30 m) whose 16 nearest samples differ between the old and new sets is
    reached, and the bound is tight: it reaches at most 1.5 times as many parcels."""
    xy, ids, old, new, geoms = _changed_county(seed)
    moved, unchanged, counts = changed_samples(old, new)
    assert counts == {"added": 2, "removed": 2, "changed": 2}
    hit = affected_parcels(geoms, moved, unchanged, k=16, k_evidence=3)
    cells, labels = parcel_cells(geoms, 30.0)
    nn_old = np.sort(np.asarray(ids)[cKDTree(xy).query(cells, k=16)[1]], axis=1)
    new_xy = new[["x", "y"]].to_numpy()
    nn_new = np.sort(new["sample_id"].to_numpy()[cKDTree(new_xy).query(cells, k=16)[1]],
                     axis=1)
    moved_ids = {"S2", "S3"}
    differs = (nn_old != nn_new).any(axis=1) | np.isin(nn_new, list(moved_ids)).any(axis=1)
    truly = np.zeros(len(geoms), dtype=bool)
    truly[labels[differs]] = True
    assert truly.any()
    assert not (truly & ~hit).any()
    assert hit.sum() <= 1.5 * truly.sum()


@pytest.mark.parametrize("seed", [4, 5])
def test_reach_in_an_anisotropic_kriging_space_never_misses(seed):
    """As above with Cd kriged under a 4 : 1 anisotropy along azimuth 30°: its neighbours
    are the 16 nearest in the kriging space, so cells reached there but not in metres must
    be reached; and the reach differs from the metre search's (the space is used)."""
    xy, ids, old, new, geoms = _changed_county(seed)
    moved, unchanged, _ = changed_samples(old, new)
    space = (4.0, 30.0)
    hit = affected_parcels(geoms, moved, unchanged, k=16, k_evidence=1,
                           spaces={"cd": space})
    cells, labels = parcel_cells(geoms, 30.0)

    def nearest(points, names):
        tree = cKDTree(kriging_space(points, *space))
        return np.sort(names[tree.query(kriging_space(cells, *space), k=16)[1]], axis=1)
    nn_old = nearest(xy, np.asarray(ids))
    nn_new = nearest(new[["x", "y"]].to_numpy(), new["sample_id"].to_numpy())
    differs = (nn_old != nn_new).any(axis=1) | np.isin(nn_new, ["S2", "S3"]).any(axis=1)
    truly = np.zeros(len(geoms), dtype=bool)
    truly[labels[differs]] = True
    assert truly.any()
    assert not (truly & ~hit).any()
    in_metres = affected_parcels(geoms, moved, unchanged, k=16, k_evidence=1)
    assert (truly & ~in_metres).any()   # the metre search alone would miss some
    assert hit.sum() <= 2.0 * truly.sum()


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_shared_reach_bound_reaches_what_each_groups_own_search_reaches(seed):
    """Samples on a 25 m grid (tied distances), duplicates, three variables each missing a
    few values, two unusable samples; parcels of every size. The one bound over the
    samples of every group clears exactly the parcels that no group reaches by the rule
    searched directly (every distance from every centre): ``r_k(c) (1 + 1e-9) >= slack``
    in some group, ``slack`` the nearest change less ``2h``."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 160, (500, 2)) * 25.0
    xy[:20] = xy[20:40]  # samples sharing a location
    keys = _keys(xy, [f"S{i}" for i in range(500)], rng.lognormal(size=500))
    for v in ("pb", "hg"):
        keys[v] = rng.lognormal(size=500)
    for v in ("cd", "pb", "hg"):
        keys.loc[rng.choice(500, 25, replace=False), v] = np.nan
    keys.loc[[3, 4], "usable"] = False
    keys.loc[[3, 4], ["cd", "pb", "hg"]] = np.nan
    corner = rng.uniform(0, 4000, (1500, 2))
    size = rng.uniform(5, 400, (1500, 2))
    geoms = shapely.box(corner[:, 0], corner[:, 1], *(corner + size).T)
    changed = rng.uniform(0, 4000, (6, 2))
    k, k_evidence = 6, 3
    hit = affected_parcels(geoms, changed, keys, k=k, k_evidence=k_evidence)
    bounds = shapely.bounds(geoms)
    centre = (bounds[:, :2] + bounds[:, 2:]) / 2
    half = 0.5 * np.hypot(*(bounds[:, 2:] - bounds[:, :2]).T)
    slack = np.sqrt(((centre[:, None] - changed[None]) ** 2).sum(-1)).min(axis=1) - 2 * half
    direct = slack <= 0
    groups = [(np.isfinite(keys[v].to_numpy()), k) for v in ("cd", "pb", "hg")]
    for mask, kk in [*groups, (keys["usable"].to_numpy(bool), k_evidence)]:
        located = np.unique(keys.loc[mask, ["x", "y"]].to_numpy(), axis=0)
        r = np.sort(np.sqrt(((centre[:, None] - located[None]) ** 2).sum(-1)), axis=1)
        direct |= r[:, kk - 1] * (1 + 1e-9) >= slack
    assert 100 < direct.sum() < len(geoms) - 100
    np.testing.assert_array_equal(hit, direct)


def test_previous_columns_only_for_the_same_parcels_in_the_same_order(tmp_path):
    """The previous run's stored columns are taken only when its parcel ids are these, in
    this order; other order, a missing id or another count: ``None`` (a full run)."""
    from farmland.classify.parcels import CLASS_COLUMNS
    from farmland.runs.incremental import _previous_columns

    ids = ["P1", "P2", "P3"]
    stored = gpd.GeoDataFrame({"parcel_id": ids, **{c: ["x"] * 3 for c in CLASS_COLUMNS}},
                              geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)],
                              crs="EPSG:4545")
    path = tmp_path / "classification.gpkg"
    pyogrio.write_dataframe(stored, path, layer="parcels")

    def parcels(values):
        return pd.DataFrame({"parcel_id": pd.Series(values, dtype=object)})

    got = _previous_columns(path, parcels(ids))
    assert got is not None and got["parcel_id"].tolist() == ids
    assert _previous_columns(path, parcels(["P1", "P3", "P2"])) is None
    assert _previous_columns(path, parcels(["P1", "P2", None])) is None
    assert _previous_columns(path, parcels(ids[:2])) is None


# --------------------------------------------------------------------------- whole runs


def _layers(folder: Path) -> dict[str, pd.DataFrame]:
    path = folder / "classification.gpkg"
    return {layer: pyogrio.read_dataframe(path, layer=layer) for layer in LAYERS
            if layer in {name for name, _ in pyogrio.list_layers(path)}}


def _assert_same(a: Path, b: Path) -> None:
    """Same layers (order, fields, types, extents) and values in ``a`` and ``b`` — ``a`` an
    incremental run, its classification file patched from the previous run's — and the
    same tables and kept leave-one-out moments."""
    fa, fb = a / "classification.gpkg", b / "classification.gpkg"
    assert pyogrio.list_layers(fa).tolist() == pyogrio.list_layers(fb).tolist()
    for layer, _ in pyogrio.list_layers(fb):
        ia, ib = pyogrio.read_info(fa, layer=layer), pyogrio.read_info(fb, layer=layer)
        for key in ("fields", "dtypes", "features", "geometry_type", "crs"):
            assert np.array_equal(ia[key], ib[key]), (layer, key)
    la, lb = _layers(a), _layers(b)
    assert la.keys() == lb.keys()
    for layer in la:
        pd.testing.assert_frame_equal(la[layer], lb[layer], check_exact=True, obj=layer)
    for name in ("summary.csv", "crossval.csv", "crossval_samples.csv", "outliers.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # the leave-one-out moments kept for the next run: the incremental run's (partly
    # reused) equal the full run's (all solved), bit for bit
    ma, mb = read_loo_memories(a / "loo_moments.parquet"), read_loo_memories(b / "loo_moments.parquet")
    assert ma.keys() == mb.keys() and ma
    for v in ma:
        assert ma[v].key == mb[v].key, v
        for field in ("coords", "values", "moments"):
            np.testing.assert_array_equal(getattr(ma[v], field), getattr(mb[v], field))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_incremental_equals_full_on_the_demo_2023_to_2024(tmp_path):
    common = ["classify", "--parcels", DEMO / "parcels.gpkg", "--parcels-layer", "DLTB",
              "--townships", DEMO / "townships.gpkg", "--crs", "EPSG:4545",
              "--workspace", tmp_path / "ws.gpkg"]
    y24 = ["--samples", DEMO / "soil_samples.csv",
           "--samples", DEMO / "resample_2024" / "soil_samples.csv",
           "--crops", DEMO / "crop_samples.csv",
           "--crops", DEMO / "resample_2024" / "crop_samples.csv"]
    r = run_cli(*common, "--samples", DEMO / "soil_samples.csv", "--crops",
                DEMO / "crop_samples.csv", "-o", tmp_path / "y23")
    assert r.exit_code == 0, r.output
    r = run_cli(*common, *y24, "-o", tmp_path / "inc")
    assert r.exit_code == 0, r.output
    r = run_cli(*common, *y24, "--since", "R0001", "--full", "-o", tmp_path / "full")
    assert r.exit_code == 0, r.output
    record = _manifest(tmp_path / "inc")["incremental"]
    assert record["from"] == "R0001"
    assert record["samples"] == {"added": 120, "removed": 0, "changed": 0}
    assert record["parcels_recomputed"] + record["parcels_kept"] == 30155
    assert 0 < record["parcels_recomputed"] < 30155 / 2
    assert "incremental" not in _manifest(tmp_path / "full")
    _assert_same(tmp_path / "inc", tmp_path / "full")


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    """900 parcels 190 m square on a 200 m grid in 6 villages (1 km bands); 144 samples whose Cd
    follows a smooth field (classes 1–3); 40 crop samples; R0001 with village units."""
    root = tmp_path_factory.mktemp("county")
    rng = np.random.default_rng(11)
    xy = np.array([(250 + 500 * (i % 12), 250 + 500 * (i // 12)) for i in range(144)],
                  dtype=float) + rng.uniform(-100, 100, (144, 2))
    cd = np.round(0.35 * np.exp(0.8 * np.sin(xy[:, 0] / 1400) + 0.6 * np.cos(xy[:, 1] / 1700)
                                + rng.normal(0, 0.15, 144)), 4)
    soil = _table(make_samples(xy, cd=cd, sample_id=[f"S{i}" for i in range(144)]))
    soil.to_csv(root / "soil.csv", index=False)
    # 2024: S0–S2 withdrawn, S10/S11 re-measured, 4 new samples in the north-east
    later = soil.drop(index=[0, 1, 2]).copy()
    later.loc[[10, 11], "cd"] = later.loc[[10, 11], "cd"] * 3
    new_xy = rng.uniform(4500, 5800, (4, 2))
    new = _table(make_samples(new_xy, cd=np.full(4, 0.9), sample_id=[f"N{i}" for i in
                                                                      range(4)]))
    pd.concat([later, new], ignore_index=True).to_csv(root / "soil_2024.csv", index=False)
    boxes = [(200 * i, 200 * j, 200 * i + 190, 200 * j + 190)
             for i in range(30) for j in range(30)]
    village = [f"{'东西南北中上'[int(b[1] // 1000)]}村" for b in boxes]  # 6 × 150 parcels
    make_parcels(boxes, village=village).to_file(root / "p.gpkg", layer="DLTB")
    crop_xy = rng.uniform(100, 5900, (40, 2))
    crops = make_samples(crop_xy, sample_id=[f"C{i}" for i in range(40)])
    crops = crops[["sample_id", "geometry"]].assign(
        crop="稻谷", cd=np.round(rng.lognormal(np.log(0.1), 0.6, 40), 3), year=2023)
    _table(crops).to_csv(root / "crops.csv", index=False)
    r = _classify(root, "r1", "soil.csv", first=True)
    assert r.exit_code == 0, r.output
    return root


def _table(points) -> pd.DataFrame:
    return points.assign(x=points.geometry.x, y=points.geometry.y).drop(columns="geometry")


def _classify(root: Path, out: str, samples: str, *extra, first: bool = False):
    since = [] if first else ["--since", "R0001", "--variograms", "reuse"]
    return run_cli("classify", "--parcels", root / "p.gpkg", "--crs", "EPSG:4545",
                   "--samples", root / samples, "--crops", root / "crops.csv",
                   "--units", "village", "--workspace", root / "ws.gpkg", *since,
                   "-o", root / out, *extra)


def test_removed_changed_added_samples_with_village_units(county):
    """Withdrawn, re-measured and new samples, village units: the same layers as a full
    run with the same variograms; whole villages are recomputed (a village is one unit
    of the point rule), so at least the villages holding a change."""
    r = _classify(county, "inc", "soil_2024.csv")
    assert r.exit_code == 0, r.output
    assert re.search(r"classification file: \d+ of 900 parcel rows rewritten in a copy", r.output)
    kept = re.search(r"leave-one-out: the kriging moments of (\d+) of (\d+)", r.output)
    assert kept and 0 < int(kept[1]) < int(kept[2])  # reused where no change reaches
    r = _classify(county, "full", "soil_2024.csv", "--full", "--overwrite")
    assert r.exit_code == 0, r.output
    record = _manifest(county / "inc")["incremental"]
    assert record["samples"] == {"added": 4, "removed": 3, "changed": 2}
    assert record["parcels_recomputed"] % 150 == 0  # whole villages of 150 parcels
    assert 0 < record["parcels_recomputed"] < 900
    _assert_same(county / "inc", county / "full")
    inc = pyogrio.read_dataframe(county / "inc" / "classification.gpkg", layer="parcels")
    first = pyogrio.read_dataframe(county / "r1" / "classification.gpkg", layer="parcels")
    assert (inc["p_class_3"] != first["p_class_3"]).any()  # the change mattered


def test_no_incremental_when_rules_differ_or_full_is_asked(county, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[profile]\nname = "stricter"\n[interpolation]\nmax_distance_m = 900.0\n',
                     encoding="utf-8")
    r = _classify(county, "other_rules", "soil_2024.csv", "--rules", rules)
    assert r.exit_code == 0, r.output
    assert "incremental" not in _manifest(county / "other_rules")
    r = _classify(county, "asked_full", "soil_2024.csv", "--full")
    assert r.exit_code == 0, r.output
    assert "incremental" not in _manifest(county / "asked_full")


# --------------------------------------------------------------------------- leave-one-out


def _kriging(xy: np.ndarray, values: np.ndarray, k: int) -> LocalKriging:
    model = VariogramModel("exponential", nugget=0.05, sill=0.5, range_=800.0)
    return LocalKriging(k=k, variogram=model).fit(xy, values)


def test_leave_one_out_reuse_on_a_line_of_samples():
    """Samples every 100 m on y = 0 (x = 0 … 1000), k = 2. The value at x = 500 changes:
    an inner location's 2 nearest others are 100 m away (the 3rd 200 m), so the change
    reaches 400, 500 (itself) and 600; the end at 0 has its 2nd other at 200 m, the change
    is 500 m away. 3 of 11 locations are solved, and every moment equals a full
    leave-one-out."""
    xy = np.column_stack([np.arange(0, 1001, 100.0), np.zeros(11)])
    values = np.linspace(0.2, 0.7, 11)
    _, memory, solved = leave_one_out_reusing(_kriging(xy, values, 2), None)
    assert solved == 11
    changed = values.copy()
    changed[5] = 1.4
    est = _kriging(xy, changed, 2)
    out, again, solved = leave_one_out_reusing(est, memory)
    assert solved == 3
    # 500's own value is left out of its estimate: only its neighbours' moments move
    moved = np.flatnonzero((again.moments != memory.moments).any(axis=0))
    assert xy[moved, 0].tolist() == [400, 600]
    full = est.leave_one_out()
    for key in full:
        np.testing.assert_array_equal(out[key], full[key])
    # another variogram: nothing is reused
    other = LocalKriging(k=2, variogram=VariogramModel("spherical", 0.05, 0.5, 800.0))
    assert leave_one_out_reusing(other.fit(xy, changed), memory)[2] == 11


@pytest.mark.parametrize("seed", [4, 5])
def test_leave_one_out_reuse_equals_a_full_leave_one_out(seed):
    """400 random samples, a duplicate location; 3 removed, 2 re-measured, 5 added, one of
    them on an existing location: the reused moments are the full leave-one-out's, bit for
    bit, and most locations are not solved again."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 8000, (400, 2))
    xy[7] = xy[8]
    values = np.exp(np.sin(xy[:, 0] / 1500) + rng.normal(0, 0.3, 400))
    _, memory, _ = leave_one_out_reusing(_kriging(xy, values, 16), None)
    new_xy = np.vstack([xy[3:], rng.uniform(0, 8000, (4, 2)), xy[50:51]])
    new_values = np.concatenate([values[3:], rng.lognormal(size=5)])
    new_values[[20, 30]] *= 1.5
    est = _kriging(new_xy, new_values, 16)
    out, _, solved = leave_one_out_reusing(est, memory)
    full = est.leave_one_out()
    for key in full:
        np.testing.assert_array_equal(out[key], full[key])
    assert 10 <= solved < 200


# --------------------------------------------------------------------------- workspace rows


def test_workspace_keeps_an_incremental_runs_differences_and_reads_them_back(county, tmp_path):
    """The incremental run stores only the parcel rows that differ from R0001 (its base);
    read back, every parcel equals the full run's stored in full; deleting or replacing the
    base first stores the dependant's rows in full, and it still reads the same."""
    import shutil
    import sqlite3

    from farmland.runs.workspace import Workspace

    root = tmp_path / "county"
    root.mkdir()
    for name in ("p.gpkg", "soil.csv", "soil_2024.csv", "crops.csv"):
        shutil.copy(county / name, root / name)
    assert _classify(root, "r1", "soil.csv", first=True).exit_code == 0
    ws = Workspace(root / "ws.gpkg")
    for out, extra in (("inc", ()), ("full", ("--full",))):
        r = _classify(root, out, "soil_2024.csv", *extra)
        assert r.exit_code == 0, r.output
    runs = ws.runs().set_index("run_id")
    assert runs.loc["R0002", "base_run"] == "R0001" and pd.isna(runs.loc["R0003", "base_run"])
    first = pyogrio.read_dataframe(root / "r1" / "classification.gpkg", layer="parcels")
    inc = pyogrio.read_dataframe(root / "inc" / "classification.gpkg", layer="parcels")
    columns = ["parcel_id", "soil_class", "final_class", "rule", "driving_element",
               "sample_ids", "qa_flags"]
    differ = int((first[columns].astype(str) != inc[columns].astype(str)).any(axis=1).sum())
    with sqlite3.connect(root / "ws.gpkg") as con:
        stored = dict(con.execute("SELECT run_id, count(*) FROM parcels GROUP BY run_id"))
    assert stored == {"R0001": 900, "R0002": differ, "R0003": 900}
    assert 0 < differ < 900
    reference = ws.load_run("R0003")[0]

    def same(run_id):
        got = ws.load_run(run_id)[0]
        pd.testing.assert_frame_equal(got, reference, check_exact=True)
        assert got.crs == reference.crs

    same("R0002")
    shutil.copy(root / "ws.gpkg", tmp_path / "before_delete.gpkg")
    ws.delete_run("R0001")
    assert pd.isna(ws.runs().set_index("run_id").loc["R0002", "base_run"])
    same("R0002")
    # replacing the base (a rerun into its folder) also keeps the dependant readable
    ws = Workspace(tmp_path / "before_delete.gpkg")
    parcels, crops, manifest = Workspace(root / "ws.gpkg").load_run("R0003")
    ws.add_run(parcels, crops=crops, manifest=manifest, replaces="R0001")
    same("R0002")
