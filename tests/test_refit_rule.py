"""The variogram refit rule (issue 15 item 2, issue 19 item 2): `farmland classify
--workspace WS --variograms auto|refit|reuse [--since RUN]` on a small synthetic county.

The county: 900 parcels 190 m square on a 200 m grid (6 × 6 km) and 144 soil samples on a
jittered 500 m grid whose Cd follows a smooth field (0.3 mg/kg × exp(0.6 sin(x/1500) +
0.5 cos(y/1800)) with 15 % noise, seeded), so classes 1 and 2 both occur; 144 samples give
all 10 296 pairs to the variogram (no random pair subsample). Run R0001 classifies them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import make_parcels, make_samples, run_cli
from scipy.spatial import cKDTree

from farmland.geostats.variogram import VariogramModel, variogram_shift

K = 16  # neighbours of the shipped rules
P_COLUMNS = ["p_class_1", "p_class_2", "p_class_3", "share_1", "share_2", "share_3"]


def _cd(xy: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return np.round(0.3 * np.exp(0.6 * np.sin(xy[:, 0] / 1500) + 0.5 * np.cos(xy[:, 1] / 1800)
                                 + noise), 4)


def _write_samples(path: Path, xy: np.ndarray, cd: np.ndarray, first: int) -> None:
    s = make_samples(xy, cd=cd, sample_id=[f"S{first + i}" for i in range(len(xy))])
    s.assign(x=s.geometry.x, y=s.geometry.y).drop(columns="geometry").to_csv(path, index=False)


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    """The county's files, new samples in the south-west corner (``corner.csv``: 6 within
    1 km of the origin, ``corner_more.csv``: 10 more, ``many.csv``: 20), and R0001."""
    root = tmp_path_factory.mktemp("county")
    rng = np.random.default_rng(7)
    xy = np.array([(250 + 500 * (i % 12), 250 + 500 * (i // 12)) for i in range(144)],
                  dtype=float) + rng.uniform(-100, 100, (144, 2))
    _write_samples(root / "soil.csv", xy, _cd(xy, rng.normal(0, 0.15, 144)), 0)
    for name, n, first in (("corner.csv", 6, 1000), ("corner_more.csv", 10, 2000),
                           ("many.csv", 20, 3000)):
        new = rng.uniform(100, 900, (n, 2))
        _write_samples(root / name, new, _cd(new, rng.normal(0, 0.15, n)), first)
    make_parcels([(200 * i, 200 * j, 200 * i + 190, 200 * j + 190)
                  for i in range(30) for j in range(30)]).to_file(root / "p.gpkg", layer="DLTB")
    res = classify(root, "r1", "soil.csv")
    assert res.exit_code == 0, res.output
    return root


def classify(root: Path, out: str, *samples: str, extra: tuple = ()):
    args = ["classify", "--parcels", root / "p.gpkg", "--crs", "EPSG:4545",
            "--workspace", root / "ws.gpkg", "-o", root / out, *extra]
    for name in samples:
        args += ["--samples", root / name]
    return run_cli(*args)


def variograms(root: Path, out: str) -> dict:
    return json.loads((root / out / "manifest.json").read_text(encoding="utf-8"))["variograms"]


def parcels(root: Path, out: str) -> gpd.GeoDataFrame:
    return gpd.read_file(root / out / "classification.gpkg", layer="parcels")


@pytest.fixture
def fresh(county, tmp_path) -> Path:
    """A copy of the county with R0001 (its workspace refers to r1 by relative path)."""
    shutil.copytree(county, tmp_path / "c")
    return tmp_path / "c"


def outside_neighbourhood(p: gpd.GeoDataFrame, root: Path, *new_files: str) -> np.ndarray:
    """Parcels no new sample can reach. A cell of a parcel lies within h (the parcel's
    half-diagonal) of its centre, so its K nearest samples lie within r + h, r the K-th
    nearest old sample from the centre; a new sample farther than r + 2h from the centre
    (and farther than the 1 000 m distance limit from the parcel) is in no cell's
    neighbourhood. A parcel holding m samples reaches the (K + m)-th: the shipped point
    rule krigs it from the other samples, its own left out."""
    import pandas as pd

    old = pd.read_csv(root / "soil.csv")[["x", "y"]].to_numpy()
    new = pd.concat([pd.read_csv(root / f) for f in new_files])[["x", "y"]].to_numpy()
    centre = np.column_stack([p.geometry.centroid.x, p.geometry.centroid.y])
    h = 190 / np.sqrt(2)
    own = p["n_samples"].fillna(0).to_numpy(dtype=int)
    dist = cKDTree(old).query(centre, k=K + own.max())[0].reshape(len(centre), -1)
    r = dist[np.arange(len(centre)), K - 1 + own]
    nearest_new = cKDTree(new).query(centre)[0]
    return nearest_new > np.maximum(r + 2 * h, 1000 + h)


def test_reuse_changes_parcels_only_where_the_new_samples_reach(fresh):
    """+6 samples in one corner (4.2 % of 144): auto reuses R0001's variograms, and every
    parcel beyond the kriging neighbourhood of the new samples keeps its probabilities,
    shares and class to the last bit; a forced refit moves them everywhere."""
    res = classify(fresh, "r2", "soil.csv", "corner.csv")
    assert res.exit_code == 0, res.output
    assert ("variograms reused from R0001 for ph, cd, hg, as, pb, cr: +6 −0 samples (4.2 %)"
            in res.stderr)
    record = variograms(fresh, "r2")
    assert record["previous_run"] == "R0001" and record["mode"] == "auto"
    cd = record["variables"]["cd"]
    assert {k: cd[k] for k in ("action", "fitted_in", "n_fitted", "added", "removed")} == {
        "action": "reused", "fitted_in": "R0001", "n_fitted": 144, "added": 6, "removed": 0}
    assert cd["change"] == pytest.approx(6 / 144, abs=1e-6) and cd["shift"] < 0.2
    before, reused = parcels(fresh, "r1"), parcels(fresh, "r2")
    far = outside_neighbourhood(before, fresh, "corner.csv")
    assert 700 < far.sum() < 900                       # most of the county is out of reach
    assert reused.loc[far, P_COLUMNS].equals(before.loc[far, P_COLUMNS])
    assert reused.loc[far, "final_class"].equals(before.loc[far, "final_class"])
    assert not reused[P_COLUMNS].equals(before[P_COLUMNS])   # ... but the corner moved
    forced = classify(fresh, "r2_refit", "soil.csv", "corner.csv",
                      extra=("--variograms", "refit"))
    assert forced.exit_code == 0, forced.output
    assert variograms(fresh, "r2_refit")["summary"] == "fitted (refit asked for)"
    moved = np.abs(parcels(fresh, "r2_refit").loc[far, "p_class_1"]
                   - before.loc[far, "p_class_1"])
    # the refitted variogram reaches far: about 3 in 4 of the far parcels move (the others
    # are certain, p_class_1 = 1, or have no estimate; 0.749 since a parcel's own samples
    # weigh in its p_class, whose posterior is often certain)
    assert (moved > 1e-6).mean() > 0.7


def test_more_than_10_percent_new_values_refits(fresh):
    res = classify(fresh, "r2", "soil.csv", "many.csv")
    assert res.exit_code == 0, res.output
    cd = variograms(fresh, "r2")["variables"]["cd"]
    assert cd["action"] == "fitted" and cd["fitted_in"] is None
    assert cd["reason"] == "+20 −0 values (13.9 %) > 10 %"
    assert "refitted ph (+20 −0 values (13.9 %) > 10 %); cd (" in res.stderr


def test_small_changes_cannot_add_up_unseen(fresh):
    """R0002 adds 6 (reused from R0001), R0003 10 more: 10 of R0002's 150 would be 6.7 %,
    but against the 144 values R0001 fitted on, 16 are 11.1 % -> refitted."""
    assert classify(fresh, "r2", "soil.csv", "corner.csv").exit_code == 0
    res = classify(fresh, "r3", "soil.csv", "corner.csv", "corner_more.csv")
    assert res.exit_code == 0, res.output
    record = variograms(fresh, "r3")
    assert record["previous_run"] == "R0002"
    assert record["variables"]["cd"]["reason"] == "+16 −0 values (11.1 %) > 10 %"


def test_removed_and_changed_values_count_too(fresh):
    import pandas as pd

    soil = pd.read_csv(fresh / "soil.csv")
    soil.iloc[:140].to_csv(fresh / "fewer.csv", index=False)      # 4 removed
    soil.loc[0, "cd"] = 0.5                                         # 1 changed: -1 +1
    soil.iloc[:140].to_csv(fresh / "changed.csv", index=False)
    assert classify(fresh, "r2", "fewer.csv").exit_code == 0
    cd = variograms(fresh, "r2")["variables"]["cd"]
    assert (cd["added"], cd["removed"], cd["action"]) == (0, 4, "reused")
    res = classify(fresh, "r3", "changed.csv")
    assert res.exit_code == 0, res.output
    cd = variograms(fresh, "r3")["variables"]["cd"]          # still against R0001's values
    assert (cd["added"], cd["removed"], cd["fitted_in"]) == (1, 5, "R0001")
    assert "variograms reused from R0002 (fitted in R0001) for ph, cd" in res.stderr


def test_reuse_forced_and_refit_forced(fresh):
    res = classify(fresh, "r2", "soil.csv", "many.csv", extra=("--variograms", "reuse"))
    assert res.exit_code == 0, res.output
    record = variograms(fresh, "r2")
    assert {v["action"] for v in record["variables"].values()} == {"reused"}
    assert record["variables"]["cd"]["reason"] == "asked for (--variograms reuse)"
    r1 = json.loads((fresh / "r1" / "manifest.json").read_text(encoding="utf-8"))
    r2 = json.loads((fresh / "r2" / "manifest.json").read_text(encoding="utf-8"))
    assert r2["geostatistics"]["models"]["cd"] == r1["geostatistics"]["models"]["cd"]


def test_a_rerun_into_its_own_folder_does_not_reuse_itself(fresh):
    res = classify(fresh, "r1", "soil.csv", "corner.csv", extra=("--overwrite",))
    assert res.exit_code == 0, res.output
    assert "run R0001 replaced in" in res.output
    assert variograms(fresh, "r1")["summary"] == (
        "fitted (no earlier run of these parcels and rules in the workspace)")


def test_other_rules_are_no_previous_run_unless_named(fresh):
    (fresh / "rules.toml").write_text("[variograms]\nreuse_max_shift = 0.0\n", encoding="utf-8")
    own = ("--rules", fresh / "rules.toml")
    assert classify(fresh, "r2", "soil.csv", "corner.csv", extra=own).exit_code == 0
    assert variograms(fresh, "r2")["previous_run"] is None
    # named with --since: taken (with a warning); a shift limit of 0 refits cd, whose refit
    # moves by 3 % of the sill, while pH (constant: an IDW fallback both times) is reused
    res = classify(fresh, "r3", "soil.csv", "corner.csv", extra=(*own, "--since", "R0001"))
    assert res.exit_code == 0, res.output
    assert "--since R0001: that run classified other parcels or used other rules" in res.stderr
    record = variograms(fresh, "r3")["variables"]
    assert record["ph"]["action"] == "reused" and record["cd"]["action"] == "fitted"
    assert record["cd"]["reason"].startswith("+6 −0 values (4.2 %), but a refit moves the "
                                             "variogram by 3 % of its sill > 0 %")


def test_options_that_need_an_earlier_run_are_refused(county, tmp_path):
    res = run_cli("classify", "--parcels", county / "p.gpkg", "--samples", county / "soil.csv",
                  "--crs", "EPSG:4545", "--since", "R0001", "-o", tmp_path / "a")
    assert res.exit_code == 2 and "--since and --variograms reuse need --workspace" in res.output
    res = run_cli("classify", "--parcels", county / "p.gpkg", "--samples", county / "soil.csv",
                  "--crs", "EPSG:4545", "--workspace", tmp_path / "new.gpkg",
                  "--variograms", "reuse", "-o", tmp_path / "b")
    assert res.exit_code == 2
    assert "--variograms reuse: no earlier run of these parcels and rules" in res.stderr
    res = classify(county, "r9", "soil.csv", extra=("--since", "R0009"))
    assert res.exit_code == 2
    assert "no run 'R0009' in the workspace" in res.stderr and "use one of: R0001" in res.stderr


def test_variogram_shift_compares_curves():
    a = VariogramModel("spherical", nugget=0.1, sill=1.0, range_=1000.0)
    assert variogram_shift(a, a, 2000.0) == 0.0
    # the nugget 0.1 -> 0.2 with the same sill: γ differs most just above 0, by 0.1 x (1 -
    # s(h)) -> 0.1 of the sill at the first evaluated lag (2000/256 m: s = 0.0117)
    b = VariogramModel("spherical", nugget=0.2, sill=1.0, range_=1000.0)
    assert variogram_shift(a, b, 2000.0) == pytest.approx(0.1 * (1 - 0.0117), abs=1e-3)
    # sill 1.0 -> 1.3 beyond the range: 30 % of the old sill
    c = VariogramModel("spherical", nugget=0.1, sill=1.3, range_=1000.0)
    assert variogram_shift(a, c, 2000.0) == pytest.approx(0.3)
    assert variogram_shift("pure nugget", "pure nugget", 2000.0) == 0.0
    assert variogram_shift(a, "pure nugget", 2000.0) == np.inf
