"""Corroborated hot spots (docs/decisions.md "Corroborated hot spots").

A 5 × 5 grid of samples 200 m apart (tests/test_outliers.py): Cd 0.2 mg/kg everywhere,
Pb 20, Hg 0.1, As 5, Cr 50 (paddy, pH 6). S6 at Cd 3.0 is 15 × the median 0.2 of its 8
nearest samples and above the screening value 0.4: a ``spatial`` suspect. Whether it is
kept depends on the other metals of S6 against their own 8 nearest samples' medians.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import X0, Y0, demo_corner, make_samples

import farmland as fl
from farmland.classify.outliers import (
    KEPT_ACTION,
    apply_outliers,
    corroborate,
    neighbour_ratios,
    screen_outliers,
)
from farmland.geostats.surfaces import interpolation_values
from farmland.rules import load_rules
from farmland.standards import load_standard

STD = load_standard()
FACTOR = load_rules().get("outliers", "corroboration")


def grid(**values: dict[str, float]):
    """25 samples S0..S24; ``values={"S6": {"cd": 3.0, "pb": 60.0}}``."""
    xy = [(X0 + 200 * (i % 5), Y0 + 200 * (i // 5)) for i in range(25)]
    s = make_samples(xy, origin=(0, 0), cd=[0.2] * 25, pb=[20.0] * 25)
    for sid, row in values.items():
        for el, value in row.items():
            s.loc[s["sample_id"] == sid, el] = value
    return s


def screened(s, factor=FACTOR):
    return corroborate(screen_outliers(s, STD), s, factor=factor).set_index("sample_id")


def test_the_shipped_factor_is_3():
    assert FACTOR == 3.0


@pytest.mark.parametrize(("pb", "kept"), [(60.0, True), (59.9, False), (20.0, False)])
def test_a_spike_is_corroborated_at_exactly_3_times_another_metals_median(pb, kept):
    # Pb 60 = 3.0 x the median 20 of S6's 8 nearest Pb values: corroborated; 59.9 not
    found = screened(grid(S6={"cd": 3.0, "pb": pb}))
    assert found.loc["S6", "check"] == "spatial"
    assert bool(found.loc["S6", "corroborated"]) is kept
    if kept:
        assert ("pb of the same sample is 3.0 × its neighbours' median too (≥ 3: "
                "co-contamination, kept as a hot spot)") in found.loc["S6", "detail"]


@pytest.mark.parametrize("mode", ["flag", "exclude"])
def test_a_corroborated_spike_stays_in_the_surface(mode):
    s = grid(S6={"cd": 3.0, "pb": 80.0})
    out, table = apply_outliers(s, corroborate(screen_outliers(s, STD), s, factor=3.0), mode)
    i = int(np.flatnonzero(out["sample_id"] == "S6")[0])
    assert table["action"].tolist() == [KEPT_ACTION]
    assert out.loc[i, "cd"] == 3.0 and interpolation_values(out, "cd")[i] == 3.0
    assert "cd_suspect" not in out


def test_keep_mode_says_which_value_was_corroborated():
    s = grid(S6={"cd": 3.0, "pb": 80.0}, S18={"cd": 3.0})
    _, table = apply_outliers(s, corroborate(screen_outliers(s, STD), s, factor=3.0), "keep")
    assert table.set_index("sample_id")["action"].to_dict() == {
        "S6": "reported only: corroborated hot spot", "S18": "reported only"}


def test_an_uncorroborated_spike_is_still_flagged_beside_a_kept_one():
    s = grid(S6={"cd": 3.0, "pb": 80.0}, S18={"cd": 3.0})
    out, table = apply_outliers(s, corroborate(screen_outliers(s, STD), s, factor=3.0), "flag")
    assert table.set_index("sample_id")["action"].to_dict() == {
        "S6": KEPT_ACTION, "S18": "kept for its own sample; left out of surfaces and variograms"}
    assert out.set_index("sample_id")["cd_suspect"].to_dict()["S18"]
    assert not out.set_index("sample_id")["cd_suspect"].to_dict()["S6"]


def test_two_spikes_of_one_sample_corroborate_each_other():
    # Cd 15 x and Pb 400 = 20 x (above Pb's screening value): both spatial, both kept
    found = screened(grid(S6={"cd": 3.0, "pb": 400.0})).set_index("element", append=True)
    assert found["check"].tolist() == ["spatial", "spatial"]
    assert found["corroborated"].tolist() == [True, True]


def test_a_unit_error_corroborates_nothing():
    # Pb 20 000 = 1000 x its neighbours: µg/kg read as mg/kg, not a metal high in the soil
    found = screened(grid(S6={"cd": 3.0, "pb": 20_000.0})).set_index("element", append=True)
    assert found.loc[("S6", "pb"), "check"] == "units"
    assert not found.loc[("S6", "cd"), "corroborated"]


def test_a_global_suspect_is_never_corroborated():
    # Cd 45 > 5 x the highest intervention value 4.0: a typo however high Pb is
    # and Pb 200 = 10 x its neighbours, a spatial spike, is not vouched for by that typo
    found = screened(grid(S6={"cd": 45.0, "pb": 200.0})).set_index("element", append=True)
    assert found["check"].to_dict() == {("S6", "cd"): "global", ("S6", "pb"): "spatial"}
    assert not found["corroborated"].any()


def test_a_low_value_is_never_corroborated():
    """A loo suspect below its neighbours stays out of the surface even when another
    metal of its sample is high: leaving it out can only raise its neighbours."""
    s = grid(S6={"cd": 0.02, "pb": 200.0})
    loo = screen_outliers(grid(S6={"cd": 3.0}), STD).assign(check="loo", value=0.02)
    assert not corroborate(loo, s, factor=3.0)["corroborated"].any()


def test_an_earlier_uncorroborated_suspect_corroborates_nothing():
    """The leave-one-out pass: Cd of S6 at 2.5 x its neighbours is a loo suspect; Pb of
    S6 (20 x) was listed by the spatial rule without corroboration (Cd's 2.5 is under 3),
    so it cannot vouch for Cd now."""
    s = grid(S6={"cd": 0.5, "pb": 400.0})
    loo = screen_outliers(grid(S6={"cd": 3.0}), STD).assign(check="loo", value=0.5)
    listed = screen_outliers(grid(S6={"pb": 400.0}), STD)
    _, listed = apply_outliers(s, corroborate(listed, s, factor=3.0), "flag")
    assert listed["action"].tolist() == [
        "kept for its own sample; left out of surfaces and variograms"]
    assert not corroborate(loo, s, factor=3.0, listed=listed)["corroborated"].any()
    assert corroborate(loo, s, factor=3.0)["corroborated"].all()


def test_neighbour_ratios_by_hand():
    r = neighbour_ratios(grid(S6={"cd": 3.0, "pb": 80.0}))
    assert r["cd"][6] == pytest.approx(15.0) and r["pb"][6] == pytest.approx(4.0)
    # S0's 8 nearest include S6: median of {0.2 x 7, 3.0} is still 0.2
    assert r["cd"][0] == pytest.approx(1.0)


def test_ratios_of_a_few_rows_are_those_of_all_rows():
    s = grid(S6={"cd": 3.0, "pb": 80.0}, S18={"cd": 0.05})
    s.loc[s["sample_id"] == "S7", "pb"] = np.nan
    every, few = neighbour_ratios(s), neighbour_ratios(s, rows=[6, 7, 18])
    for el in every:
        np.testing.assert_array_equal(few[el][[6, 7, 18]], every[el][[6, 7, 18]])
        assert np.isnan(np.delete(few[el], [6, 7, 18])).all()
    assert np.isnan(few["pb"][7]) and few["cd"][18] == pytest.approx(0.25)


def test_the_rules_set_and_bound_the_factor(tmp_path):
    (tmp_path / "r.toml").write_text("[outliers]\ncorroboration = 1.0\n", encoding="utf-8")
    with pytest.raises(fl.StandardError,
                       match=r"\[outliers\] corroboration = 1.0 is out of range"):
        load_rules(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text("[outliers]\ncorroboration = 1000\n", encoding="utf-8")
    off = load_rules(tmp_path / "r.toml").get("outliers", "corroboration")
    assert not screened(grid(S6={"cd": 3.0, "pb": 80.0}), off)["corroborated"].any()


def test_classify_keeps_a_corroborated_hot_spot_in_the_surface(tmp_path, cli):
    """`farmland classify` on the demo corner: one sample's Cd raised to 12 × the corner's
    median (a leave-one-out suspect) and its Pb to 4 × the corner's highest (corroborating):
    listed in outliers.csv as kept, not marked suspect, counted apart in the manifest, in
    the Cd cross-validation like any value."""
    import geopandas as gpd
    import pandas as pd

    from farmland.runs.folder import read_manifest

    soil = demo_corner(tmp_path)
    cd, pb = soil["镉"].astype(float), soil["铅"].astype(float)
    soil.loc[3, "镉"] = f"{12 * cd.median():.3f}"
    soil.loc[3, "铅"] = f"{4 * pb.max():.1f}"
    soil.to_csv(tmp_path / "soil.csv", index=False, encoding="utf-8-sig")
    res = cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
              "--crs", "EPSG:4545", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    sid = soil.loc[3, "样品编号"]
    table = pd.read_csv(tmp_path / "out" / "outliers.csv", encoding="utf-8-sig")
    row = table.set_index(["sample_id", "element"]).loc[(sid, "cd")]
    assert row["check"] == "loo" and row["action"] == KEPT_ACTION
    assert "pb of the same sample is" in row["detail"]
    assert "kept as hot spots" in res.stderr
    samples = gpd.read_file(tmp_path / "out" / "classification.gpkg", layer="samples")
    assert "cd_suspect" not in samples or not samples.set_index("sample_id").at[sid, "cd_suspect"]
    cv = pd.read_csv(tmp_path / "out" / "crossval_samples.csv", encoding="utf-8-sig")
    assert sid in set(cv.loc[cv["variable"] == "cd", "sample_id"])
    manifest = read_manifest(tmp_path / "out")["outliers"]
    assert manifest["hot_spots_kept"] >= 1
    assert manifest["suspect_values"] + manifest["hot_spots_kept"] == len(table)


@pytest.mark.parametrize(("action", "zh"), [
    (KEPT_ACTION, "多项同时偏高，作为真实高值点保留，参与插值与变异函数 " + KEPT_ACTION),
    ("kept for its own sample; left out of surfaces and variograms",
     ("仅用于本样点定类，不参与插值与变异函数 kept for its own sample; left out of surfaces and "
      "variograms")),
    ("reported only: corroborated hot spot",
     "仅报告（多项同时偏高的高值点） reported only: corroborated hot spot")])
def test_the_report_says_every_action_in_both_languages(action, zh):
    from farmland.report.excel import display_value

    assert display_value("action", action, "zh") == zh
    assert display_value("action", action, "en") == action


def test_the_map_fills_a_kept_hot_spot_and_says_its_action_in_both_languages():
    import geopandas as gpd
    from conftest import make_parcels

    from farmland.maps.layers import display_frame

    s = grid(S6={"cd": 3.0, "pb": 80.0}, S18={"cd": 3.0})
    _, table = apply_outliers(s, corroborate(screen_outliers(s, STD), s, factor=3.0), "flag")
    points = s.set_index("sample_id").geometry.reindex(table["sample_id"]).to_numpy()
    layer = gpd.GeoDataFrame(table, geometry=points, crs=s.crs)
    shown = display_frame("outliers", layer).set_axis(table["sample_id"])
    assert shown["_kept"].to_dict() == {"S6": True, "S18": False}
    assert shown.at["S6", "_action"] == (
        "多项同时偏高，作为真实高值点保留，参与插值与变异函数 " + KEPT_ACTION)
    html = fl.make_map(make_parcels(n=2, final_class=[1, 3]), outliers=layer).get_root().render()
    assert "可疑数值与高值点 Suspect values and hot spots" in html
    assert "作为真实高值点保留" in html
