"""Outlier screening of soil samples (issue 15, item 3), on hand-built cases.

A 5 × 5 grid of samples 200 m apart, Cd 0.20 mg/kg everywhere (paddy, pH 6: screening
0.4, intervention 2.0; the highest intervention value of Cd over the pH bands is 4.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import X0, Y0, demo_corner, make_parcels, make_samples

import farmland as fl
from farmland.classify.outliers import apply_outliers, screen_loo, screen_outliers
from farmland.classify.samples import classify_samples
from farmland.geostats.estimators import LocalKriging
from farmland.geostats.quality import cross_validation_report
from farmland.geostats.surfaces import interpolation_values
from farmland.geostats.variogram import VariogramModel
from farmland.rules import load_rules
from farmland.runs.folder import read_manifest
from farmland.standards import load_standard

STD = load_standard()


def grid(**cd_at: float):
    """25 samples S0..S24 on a 200 m grid; ``cd_at={"S12": 45}`` sets some Cd values."""
    xy = [(X0 + 200 * (i % 5), Y0 + 200 * (i // 5)) for i in range(25)]
    s = make_samples(xy, origin=(0, 0), cd=[0.2] * 25)
    for sid, value in cd_at.items():
        s.loc[s["sample_id"] == sid, "cd"] = value
    return s


def test_clean_samples_have_no_suspects():
    assert screen_outliers(grid(), STD).empty


def test_a_mistyped_value_is_a_global_suspect():
    # 45 > 5 x 4.0 = 20 (and 225 x its neighbours' median, below the µg/kg band)
    found = screen_outliers(grid(S12=45.0), STD)
    assert found[["sample_id", "element", "check"]].values.tolist() == [["S12", "cd", "global"]]
    assert "45 mg/kg is more than 5 × its highest intervention value (4)" in found["detail"][0]


def test_a_local_spike_and_a_unit_mixup():
    found = screen_outliers(grid(S6=3.0, S18=200.0), STD).set_index("sample_id")
    # S6: 3.0 = 15 x the median 0.2 of its 8 neighbours, and above screening -> spatial
    assert found.loc["S6", "check"] == "spatial"
    # S18: 200 = 1000 x the neighbours' median: µg/kg read as mg/kg, one row only
    assert found.loc["S18", "check"] == "units"
    assert "µg/kg read as mg/kg" in found.loc["S18", "detail"]
    assert len(found) == 2


def test_a_moderately_high_value_is_not_a_spike():
    # 1.8 = 9 x the median: below the factor 10 -> a real contamination gradient, kept
    assert screen_outliers(grid(S12=1.8), STD).empty


def test_implausible_ph_is_a_suspect():
    s = grid()
    s.loc[0, "ph"] = 12.5
    found = screen_outliers(s, STD)
    assert found[["sample_id", "element", "check"]].values.tolist() == [["S0", "ph", "ph_range"]]


@pytest.mark.parametrize("mode", ["flag", "exclude", "keep"])
def test_modes(mode):
    s = grid(S12=45.0)
    out, table = apply_outliers(s, screen_outliers(s, STD), mode)
    assert table["action"].nunique() == 1 and len(table) == 1
    values = interpolation_values(out, "cd")
    i = int(np.flatnonzero(out["sample_id"] == "S12")[0])
    if mode == "flag":
        assert out.loc[i, "cd"] == 45.0 and np.isnan(values[i])   # kept, not interpolated
    elif mode == "exclude":
        assert np.isnan(out.loc[i, "cd"]) and np.isnan(values[i])
    else:
        assert out.loc[i, "cd"] == 45.0 and values[i] == 45.0
    assert s.loc[i, "cd"] == 45.0                                   # input not modified


def test_flagged_value_still_classes_its_own_parcel_but_not_its_neighbours(tmp_path):
    """The hot spot makes its own parcel class 3 (a real value must), but the surface
    around it is made from the other samples: the neighbour parcel stays class 1."""
    s = grid(S12=45.0)
    parcels = make_parcels([(360, 360, 440, 440), (500, 360, 580, 440)], origin=(X0, Y0),
                           final_class=None)
    parcels = parcels.drop(columns=["final_class"])
    flagged, _ = apply_outliers(s, screen_outliers(s, STD), "flag")
    out, _, _ = fl.classify_parcels(parcels, flagged, interpolator="idw")
    assert out["final_class"].tolist() == [3, 1]
    kept, _ = apply_outliers(s, screen_outliers(s, STD), "keep")
    spread, _, _ = fl.classify_parcels(parcels, kept, interpolator="idw")
    assert spread["final_class"].tolist() == [3, 3]      # kept: the typo spreads


def test_unknown_mode_is_refused():
    with pytest.raises(fl.InputError, match="unknown outlier mode"):
        apply_outliers(grid(), pd.DataFrame(columns=["sample_id", "element", "value", "check",
                                                     "detail", "fix"]), "drop")


def test_classify_writes_outliers_csv_and_layer(tmp_path, cli):
    """`farmland classify` on the demo corner with one mistyped 镉 (45 for 0.45)."""
    import geopandas as gpd

    soil = demo_corner(tmp_path)
    soil.loc[3, "镉"] = "45"
    soil.to_csv(tmp_path / "soil.csv", index=False, encoding="utf-8-sig")
    res = cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
              "--crs", "EPSG:4545", "--interpolator", "idw", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "out" / "outliers.csv", encoding="utf-8-sig")
    assert table[["sample_id", "element", "check"]].values.tolist() == [
        [soil.loc[3, "样品编号"], "cd", "global"]]
    layer = gpd.read_file(tmp_path / "out" / "classification.gpkg", layer="outliers")
    assert len(layer) == 1 and layer.geometry.iloc[0] is not None
    assert read_manifest(tmp_path / "out")["outliers"] == {"mode": "flag", "suspect_values": 1,
                                                           "hot_spots_kept": 0}


def test_suspect_values_are_a_map_layer_with_escaped_text():
    s = grid(S12=45.0)
    _, table = apply_outliers(s, screen_outliers(s, STD), "flag")
    table.loc[0, "detail"] = "<img src=x onerror=alert(1)>"
    points = s.set_index("sample_id").geometry.reindex(table["sample_id"]).to_numpy()
    import geopandas as gpd

    layer = gpd.GeoDataFrame(table, geometry=points, crs=s.crs)
    parcels = make_parcels(n=2, final_class=[1, 3])
    html = fl.make_map(parcels, outliers=layer).get_root().render()
    assert "可疑数值与高值点 Suspect values and hot spots" in html
    assert "<img src=x onerror" not in html            # data is text, never markup


# ------------------------------------------------------------------ leave-one-out rule
#: the variogram of the hand-built leave-one-out cases (log scale): spherical, nugget
#: 0.05, sill 0.5, range 1 000 m
LOO_MODEL = VariogramModel("spherical", nugget=0.05, sill=0.5, range_=1000.0)
#: kriging SD (log scale) of the centre S24 of a 7 × 7 grid 200 m apart from its 16 nearest
#: other samples under LOO_MODEL; a constant background 0.2 makes its estimate ln 0.2
LOO_SD = 0.41055635


def loo_grid(cd_centre: float, **columns):
    """49 samples S0..S48 on a 200 m grid, Cd 0.2 everywhere but the centre S24."""
    xy = [(200 * (i % 7), 200 * (i // 7)) for i in range(49)]
    cd = [0.2] * 49
    cd[24] = cd_centre
    return classify_samples(make_samples(xy, cd=cd, **columns), standard=STD)


def loo_screen(samples, max_z=4.0, listed=None):
    """The run's cross-validation with LOO_MODEL for every variable, then the rule."""
    def make(variable):
        return LocalKriging(k=16, log=variable != "ph", variogram=LOO_MODEL)
    _, per_sample, _ = cross_validation_report(samples, make, standard=STD)
    return screen_loo(per_sample, samples, max_z=max_z, listed=listed)


def test_loo_sd_of_the_hand_built_grid():
    est = LocalKriging(k=16, variogram=LOO_MODEL).fit(
        np.array([(200.0 * (i % 7), 200.0 * (i // 7)) for i in range(49)]), np.full(49, 0.2))
    out = est.leave_one_out()
    assert out["mean"][24] == pytest.approx(np.log(0.2))
    assert np.sqrt(out["variance"][24]) == pytest.approx(LOO_SD)


@pytest.mark.parametrize("z, flagged", [(4.5, True), (-4.5, True), (3.5, False), (-3.5, False)])
def test_loo_flags_a_value_beyond_4_kriging_sd(z, flagged):
    # 4.5 SD above: Cd 1.269 = 6.3 x its neighbours -- under the spatial rule's factor 10
    value = 0.2 * np.exp(z * LOO_SD)
    s = loo_grid(value)
    assert screen_outliers(s, STD).empty                    # the other rules miss it
    found = loo_screen(s)
    if not flagged:
        assert found.empty
        return
    assert found[["sample_id", "element", "check"]].values.tolist() == [["S24", "cd", "loo"]]
    assert found["value"][0] == pytest.approx(value)
    side = "above" if z > 0 else "below"
    assert found["detail"][0] == (
        f"S24 cd {value:g} mg/kg is 4.50 kriging standard deviations {side} its leave-one-out "
        f"estimate 0.2 mg/kg from the nearest other samples (z = {z:+.2f} on the log scale; "
        "suspect beyond ±4)")


def test_loo_threshold_comes_from_the_rules():
    s = loo_grid(0.2 * np.exp(4.5 * LOO_SD))
    assert loo_screen(s, max_z=5.0).empty
    assert len(loo_screen(s, max_z=4.4)) == 1
    assert load_rules().get("outliers", "loo_max_z") == 4.0


def test_loo_skips_below_detection_and_values_already_listed():
    low = 0.2 * np.exp(-4.5 * LOO_SD)
    censored = [False] * 49
    censored[24] = True
    assert loo_screen(loo_grid(low, cd_censored=censored)).empty  # half the detection limit
    listed = pd.DataFrame({"sample_id": ["S24"], "element": ["cd"], "check": ["spatial"]})
    assert loo_screen(loo_grid(0.2 * np.exp(4.5 * LOO_SD)), listed=listed).empty


def test_loo_flags_no_more_than_5_percent_of_a_variable(caplog):
    """Two Cd values flagged by earlier passes and S24 now: 3 of 51 (5.9 %) > 5 % -- the
    kriging SDs are too narrow for the data, so nothing more is flagged, with a WARNING."""
    s = loo_grid(0.2 * np.exp(4.5 * LOO_SD))
    earlier = pd.DataFrame({"sample_id": ["X1", "X2"], "element": ["cd", "cd"],
                            "check": ["loo", "loo"]})
    assert loo_screen(s, listed=earlier).empty
    assert "3 of 51 cd values lie beyond ±4 kriging SD" in caplog.text
    assert "no cd value is flagged by this rule" in caplog.text
    assert len(loo_screen(s, listed=earlier.iloc[:1])) == 1     # 2 of 50 = 4 %: flagged


def test_loo_on_ph_is_on_the_ph_scale():
    s = loo_grid(0.2)
    s.loc[24, "ph"] = 6.0 + 4.5 * LOO_SD                     # pH is kriged as it is
    found = loo_screen(s)
    assert found[["sample_id", "element"]].values.tolist() == [["S24", "ph"]]
    assert "estimate 6 from the nearest other samples (z = +4.50 on the pH scale" in \
        found["detail"][0]


def test_a_rules_file_sets_the_loo_threshold(tmp_path):
    (tmp_path / "r.toml").write_text("[outliers]\nloo_max_z = 1.5\n", encoding="utf-8")
    with pytest.raises(fl.StandardError, match=r"\[outliers\] loo_max_z = 1.5 is out of range"):
        load_rules(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text("[outliers]\nloo_max_z = 5\n", encoding="utf-8")
    assert load_rules(tmp_path / "r.toml").get("outliers", "loo_max_z") == 5


def gradient_county(folder: Path, s44: float = 1.0, trend: str = "none") -> None:
    """64 parcels 240 m square and 64 samples on a 250 m grid whose Cd rises from west to
    east (log-gradient with 8 % noise, seeded); S27's Cd is one eighth of what it was,
    S44's ``s44`` times. ``rules.toml``: the variograms fitted to the values (``trend =
    "none"``: the kriging story of these tests; the shipped linear trend leaves Cd pure
    noise, an IDW fallback, see the test of that below) or to the ``trend``'s residuals."""
    rng = np.random.default_rng(1)
    xy = [(125 + 250 * (i % 8), 125 + 250 * (i // 8)) for i in range(64)]
    cd = np.round(0.2 * np.exp(0.0006 * np.array(xy)[:, 0] + rng.normal(0, 0.08, 64)), 4)
    cd[27] = round(cd[27] / 8, 4)
    cd[44] = round(cd[44] * s44, 4)
    s = make_samples(xy, cd=cd)
    s.assign(x=s.geometry.x, y=s.geometry.y).drop(columns="geometry").to_csv(
        folder / "soil.csv", index=False)
    make_parcels([(250 * i, 250 * j, 250 * i + 240, 250 * j + 240)
                  for i in range(8) for j in range(8)]).to_file(folder / "p.gpkg", layer="DLTB")
    (folder / "rules.toml").write_text(f'[interpolation]\ntrend = "{trend}"\n', encoding="utf-8")


@pytest.mark.parametrize("mode", ["flag", "keep"])
def test_classify_flags_a_loo_suspect_and_leaves_it_out_of_the_surface(tmp_path, cli, mode):
    """S27 is 1/8 of its neighbours (0.041 among ~0.33): not a spike above screening nor a
    unit mix-up, but 7 kriging SD below its leave-one-out estimate."""
    import geopandas as gpd

    gradient_county(tmp_path)
    res = cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
              "--crs", "EPSG:4545", "--outliers", mode, "--rules", tmp_path / "rules.toml",
              "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "out" / "outliers.csv", encoding="utf-8-sig")
    assert table[["sample_id", "element", "check"]].values.tolist() == [["S27", "cd", "loo"]]
    assert "7.10 kriging standard deviations" in table["detail"][0]
    assert "z = -7.10 on the log scale" in table["detail"][0]
    samples = gpd.read_file(tmp_path / "out" / "classification.gpkg", layer="samples")
    cv = pd.read_csv(tmp_path / "out" / "crossval_samples.csv", encoding="utf-8-sig")
    in_cv = "S27" in set(cv.loc[cv["variable"] == "cd", "sample_id"])
    if mode == "flag":   # out of the surface (and its refitted variogram), kept for its class
        assert samples.set_index("sample_id").at["S27", "cd_suspect"] == 1
        assert not in_cv and "refitted cd without them" in res.stderr
    else:
        assert "cd_suspect" not in samples and in_cv
    assert read_manifest(tmp_path / "out")["outliers"] == {"mode": mode, "suspect_values": 1,
                                                           "hot_spots_kept": 0}


def test_a_second_pass_finds_what_the_first_suspect_hid(tmp_path):
    """S44 at 0.6 x its value: with S27 in the Cd variogram (nugget 0.075) it is under 4 SD
    off; refitted without S27 (nugget 0.004) it is 4.89 SD off and flagged in pass 2."""
    from farmland.runs.pipeline import ClassificationInputs, classify_run

    gradient_county(tmp_path, s44=0.6)
    res = classify_run(ClassificationInputs(parcels=tmp_path / "p.gpkg",
                                            samples=tmp_path / "soil.csv", crs="EPSG:4545",
                                            rules=tmp_path / "rules.toml"),
                       rules=load_rules(tmp_path / "rules.toml"))
    assert res.outliers[["sample_id", "check"]].values.tolist() == [["S27", "loo"],
                                                                    ["S44", "loo"]]
    assert "z = -4.89" in res.outliers["detail"][1]
    assert res.surfaces.models["cd"].nugget < 0.01      # fitted without both


def test_a_variable_without_structure_is_screened_by_its_idw_error(tmp_path):
    """With the shipped linear trend the gradient county's Cd residuals are noise (8 %):
    kriging falls back to IDW, and the rule measures each value against the IDW of its
    neighbours in SDs of the IDW's own leave-one-out error (the fallback's variance), so
    S27 at an eighth is flagged there too, and S44 at 0.6 x in the second pass."""
    from farmland.runs.pipeline import ClassificationInputs, classify_run

    gradient_county(tmp_path, s44=0.6, trend="linear")
    res = classify_run(ClassificationInputs(parcels=tmp_path / "p.gpkg",
                                            samples=tmp_path / "soil.csv", crs="EPSG:4545"))
    assert isinstance(res.surfaces.models["cd"], str)          # an IDW fallback
    assert "pure nugget" in res.surfaces.models["cd"]
    assert res.outliers[["sample_id", "element", "check"]].values.tolist() == [
        ["S27", "cd", "loo"], ["S44", "cd", "loo"]]
    detail = res.outliers["detail"][0]
    assert "standard deviations of the IDW's leave-one-out error" in detail
    assert "kriging standard deviations" not in detail
    # z again from the IDW itself: S27's leave-one-out error over the root mean squared
    # leave-one-out error of all 64 values (the fallback's variance), on the log scale
    soil = pd.read_csv(tmp_path / "soil.csv")
    idw = fl.geostats.IDW(k=16, log=True).fit(soil[["x", "y"]].to_numpy(), soil["cd"].to_numpy())
    err = np.log(soil["cd"].to_numpy()) - np.log(idw.leave_one_out()["predicted"])
    z27 = err[27] / np.sqrt(np.mean(err**2))
    assert z27 < -4
    assert f"(z = {z27:+.2f} on the log scale" in detail
