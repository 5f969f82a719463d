"""The truth-known validation harness (issue 15): metrics worked by hand, baselines on a toy,
the synthetic generator's reproducibility and scenario features, and one small county run
end to end through farmland with its metrics held above recorded floors."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from farmland.classify.samples import classify_samples
from farmland.cli import main
from farmland.validation import (
    SCENARIOS,
    agreement,
    agreement_all,
    calibration_gap,
    class3_precision,
    class3_recall,
    class_metrics,
    contaminated_called_clean,
    evaluate_county,
    idw_classes,
    make_county,
    nearest_sample_classes,
    reliability_table,
    summarise,
    target_check,
    unclassified_share,
)

# --------------------------------------------------------------------------- metrics
# five parcels, 100 亩 in all
TRUTH = [1, 2, 3, 3, 2]
PRED = pd.array([1, 1, 3, pd.NA, 3], dtype="Int8")
AREA = [10.0, 20.0, 30.0, 15.0, 25.0]
P3 = [0.05, 0.15, 0.95, 0.12, 0.55]  # predicted probability of class 3


def test_agreement_counts_classified_area_only():
    # classified: parcels 1, 2, 3, 5 (85 亩); right: parcel 1 (10) and 3 (30)
    assert agreement(TRUTH, PRED, AREA) == pytest.approx(40 / 85)
    # over all area the unclassified parcel 4 counts as wrong
    assert agreement_all(TRUTH, PRED, AREA) == pytest.approx(0.40)


def test_class3_recall_and_precision():
    # true class 3: parcels 3 (30, classed 3) and 4 (15, unclassified = a miss)
    assert class3_recall(TRUTH, PRED, AREA) == pytest.approx(30 / 45)
    # classed 3: parcels 3 (30, right) and 5 (25, truly class 2)
    assert class3_precision(TRUTH, PRED, AREA) == pytest.approx(30 / 55)


def test_contaminated_called_clean_and_unclassified():
    # true 2/3: parcels 2, 3, 4, 5 (90 亩); classed 1 among them: parcel 2 (20)
    assert contaminated_called_clean(TRUTH, PRED, AREA) == pytest.approx(20 / 90)
    assert unclassified_share(PRED, AREA) == pytest.approx(0.15)


def test_metrics_are_nan_without_a_denominator():
    assert math.isnan(class3_recall([1, 2], [1, 2], [1.0, 1.0]))
    assert math.isnan(class3_precision([1, 3], [1, 2], [1.0, 1.0]))
    assert math.isnan(contaminated_called_clean([1, 1], [1, 2], [1.0, 1.0]))
    assert math.isnan(agreement([1, 2], [pd.NA, pd.NA], [1.0, 1.0]))


def test_metrics_refuse_missing_truth_and_ragged_input():
    with pytest.raises(ValueError, match="true class"):
        agreement([1, None], [1, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="differ in length"):
        agreement([1, 2], [1], [1.0, 1.0])


def test_reliability_table_by_hand():
    observed = np.array(TRUTH) == 3
    table = reliability_table(P3, observed, AREA).set_index("bin")
    assert list(table.index) == [0, 1, 5, 9]
    # bin 1 [0.1, 0.2): parcels 2 (20 亩, p 0.15, not 3) and 4 (15 亩, p 0.12, class 3)
    assert table.loc[1, "area_share"] == pytest.approx(0.35)
    assert table.loc[1, "predicted"] == pytest.approx((20 * 0.15 + 15 * 0.12) / 35)
    assert table.loc[1, "observed"] == pytest.approx(15 / 35)
    assert table.loc[5, "gap"] == pytest.approx(-0.55)  # parcel 5: p 0.55, not class 3
    assert table.loc[9, "gap"] == pytest.approx(0.05)  # parcel 3: p 0.95, class 3
    assert table.loc[0, "gap"] == pytest.approx(-0.05)  # parcel 1: p 0.05, not class 3
    # every bin holds >= 1 % of the area: the worst is bin 5
    assert calibration_gap(P3, observed, AREA) == pytest.approx(0.55)
    # bins with >= 30 % of the area: bin 1 (gap 15/35 - 4.8/35) and bin 9 (0.05)
    assert calibration_gap(P3, observed, AREA, min_area_share=0.3) == pytest.approx(10.2 / 35)


def test_reliability_bin_edges_and_missing_probabilities():
    table = reliability_table([0.0, 0.1, 0.3, 1.0, np.nan], [True] * 5, [1.0] * 5)
    assert list(table["bin"]) == [0, 1, 3, 9]  # lower edge closed, 1.0 in the last bin
    assert table["n_parcels"].sum() == 4  # NaN left out
    assert math.isnan(calibration_gap([np.nan], [True], [1.0]))


def test_class_metrics_takes_the_worst_class_gap():
    probs = pd.DataFrame({"p_class_1": np.nan, "p_class_2": np.nan, "p_class_3": P3})
    out = class_metrics(TRUTH, PRED, AREA, probs)
    assert out["calibration_gap_3"] == pytest.approx(0.55)
    assert math.isnan(out["calibration_gap_1"])
    assert out["calibration_gap"] == pytest.approx(0.55)
    assert out["agreement"] == pytest.approx(40 / 85)
    assert math.isnan(class_metrics(TRUTH, PRED, AREA)["calibration_gap"])


# --------------------------------------------------------------------------- summaries
def _rows() -> pd.DataFrame:
    rows = []
    for scenario, base in (("a", 0.8), ("b", 0.6)):
        for seed, shift in ((1, 0.0), (2, 0.1)):
            for method, bonus in (("farmland", 0.05), ("nearest", 0.0), ("idw", 0.02)):
                value = base + shift + bonus
                rows.append({"scenario": scenario, "seed": seed, "method": method,
                             "area_mu": 100.0, "true_class2_mu": 20.0, "true_class3_mu": 5.0,
                             "n_samples": 50, "agreement": value, "agreement_all": value,
                             "class3_recall": value, "class3_precision": value,
                             "contaminated_called_clean": 0.02,
                             "unclassified_share": 0.0, "calibration_gap": 0.04,
                             "calibration_gap_1": 0.04, "calibration_gap_2": 0.01,
                             "calibration_gap_3": 0.0, "calibration_floor": 0.03,
                             "seconds": 1.0})
    return pd.DataFrame(rows)


def test_summarise_means_over_seeds_then_scenarios():
    summary = summarise(_rows())
    assert list(summary["scenario"]) == ["a"] * 3 + ["b"] * 3 + ["mean"] * 3
    assert list(summary["method"][:3]) == ["farmland", "nearest", "idw"]
    a_farmland = summary[(summary["scenario"] == "a") & (summary["method"] == "farmland")]
    assert a_farmland["agreement"].item() == pytest.approx(0.8 + 0.05 + 0.05)
    mean = summary[summary["scenario"] == "mean"].set_index("method")
    assert mean.loc["farmland", "agreement"] == pytest.approx((0.9 + 0.7) / 2)
    assert mean.loc["farmland", "n_seeds"] == 2


def test_target_check_compares_with_the_best_baseline():
    targets = target_check(summarise(_rows())).set_index("metric")
    assert targets.loc["agreement", "threshold"] == pytest.approx(0.77)  # idw's mean
    assert bool(targets.loc["agreement", "met"])
    assert not bool(targets.loc["class3_recall", "met"])  # 0.8 < 0.85
    assert bool(targets.loc["contaminated_called_clean", "met"])
    assert bool(targets.loc["calibration_gap", "met"])


# --------------------------------------------------------------------------- baselines
def _toy():
    """Four 100 m paddy squares on a line; three samples (Cd 0.35, 5.0, 1.0; pH 6.0)."""
    x0, y0 = 450_000.0, 2_745_000.0
    lefts = {"A": 0, "B": 1000, "C": 1400, "D": 1700}
    parcels = gpd.GeoDataFrame(
        {"parcel_id": list(lefts), "dlbm": "0101"},
        geometry=[shapely.box(x0 + v, y0, x0 + v + 100, y0 + 100) for v in lefts.values()],
        crs="EPSG:4545")
    samples = gpd.GeoDataFrame(
        {"sample_id": ["s1", "s2", "s3"], "ph": 6.0, "cd": [0.35, 5.0, 1.0], "hg": 0.05,
         "as": 8.0, "pb": 30.0, "cr": 60.0},
        geometry=shapely.points([(x0 + 50, y0 + 50), (x0 + 1050, y0 + 50),
                                 (x0 + 2050, y0 + 50)]), crs="EPSG:4545")
    return parcels, classify_samples(samples, parcels=parcels.assign(landuse="paddy"))


def test_nearest_sample_takes_the_point_class():
    parcels, samples = _toy()
    assert list(samples["point_class"]) == [1, 3, 2]  # paddy, pH 6: Cd 0.4 / 2.0
    # C's centre (1450) is 400 m from s2 and 600 m from s3; D's (1750) 300 m from s3
    assert list(nearest_sample_classes(parcels, samples)) == [1, 3, 3, 2]


def test_idw_classes_interpolated_logs_with_the_parcel_land_use():
    parcels, samples = _toy()
    # D at 1750: distances 1700, 700, 300 m -> ln Cd = Σ ln(c)/d² / Σ 1/d² = 0.2164,
    # Cd = 1.242 (class 2); C at 1450: 1400, 400, 600 m -> ln Cd = 0.9985, Cd = 2.71
    # (class 3 at pH 6); A and B hold a sample (distance 0: its own value)
    assert list(idw_classes(parcels, samples)) == [1, 3, 3, 2]
    # A's Cd 0.35 is class 1 on paddy (screening 0.4 at pH 6) but class 2 on dry land (0.3)
    dry = parcels.assign(dlbm="0103")
    assert list(idw_classes(dry, samples)) == [2, 3, 3, 2]
    assert list(nearest_sample_classes(dry, samples)) == [1, 3, 3, 2]  # the sample's class
    # with k = 1 the IDW baseline is the nearest sample's values
    assert list(idw_classes(parcels, samples, k=1)) == [1, 3, 3, 2]


def test_baselines_need_classified_samples():
    parcels, samples = _toy()
    with pytest.raises(ValueError, match="classified first"):
        nearest_sample_classes(parcels, samples.drop(columns="point_class"))


# --------------------------------------------------------------------------- generator
def test_same_seed_gives_an_identical_county():
    a, b = make_county("noisy", 7, n_parcels=300), make_county("noisy", 7, n_parcels=300)
    for name in ("parcels", "samples"):
        left, right = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(left.drop(columns="geometry"),
                                      right.drop(columns="geometry"))
        assert shapely.equals_exact(left.geometry.values, right.geometry.values, 0).all()
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.sample_truth, b.sample_truth)
    other = make_county("noisy", 8, n_parcels=300)
    assert not a.truth["cd"].equals(other.truth["cd"].reindex(a.truth.index))


def test_county_shape_and_truth_columns():
    county = make_county("plumes", 1, n_parcels=300)
    parcels, truth = county.parcels, county.truth
    assert parcels.crs.to_epsg() == 4545
    assert list(parcels.columns) == ["parcel_id", "township", "village", "dlbm", "TBDLMJ",
                                     "geometry"]
    assert 250 <= len(parcels) <= 350
    assert set(parcels["dlbm"]) == {"0101", "0102", "0103", "0201"}
    assert (parcels["TBDLMJ"] < parcels.area).all()
    assert set(truth["true_class"]) <= {1, 2, 3}
    shares = truth[["true_share_1", "true_share_2", "true_share_3"]].sum(axis=1)
    assert np.allclose(shares, 1.0, atol=1e-3)
    assert list(county.samples.columns[:7]) == ["sample_id", "pH", "Cd", "Hg", "As", "Pb", "Cr"]
    assert county.samples["Cd"].map(type).eq(str).all()  # lab text, "<DL" possible


@pytest.fixture(scope="module")
def plume_county():
    return make_county("plumes", 1, n_parcels=600)


def test_plume_class3_lies_downwind(plume_county):
    c = plume_county
    plants, wind = c.features["enterprises"], np.deg2rad(c.features["wind_to_deg"])
    assert 2 <= len(plants) <= 4
    rep = shapely.get_coordinates(shapely.point_on_surface(c.parcels.geometry.values))
    px, py = plants["x"].to_numpy(), plants["y"].to_numpy()
    k = np.hypot(rep[:, :1] - px, rep[:, 1:] - py).argmin(axis=1)
    along = (rep[:, 0] - px[k]) * np.sin(wind) + (rep[:, 1] - py[k]) * np.cos(wind)
    c3 = (c.truth["true_class"] == 3).to_numpy()
    area = c.truth["area_mu"].to_numpy()
    assert c3.sum() >= 5
    assert area[c3 & (along > 0)].sum() / area[c3].sum() >= 0.75  # measured 0.98


def test_irrigation_band_follows_the_channel():
    c = make_county("irrigation", 3, n_parcels=600)
    rep = shapely.points(shapely.get_coordinates(shapely.point_on_surface(
        c.parcels.geometry.values)))
    dist = shapely.distance(rep, c.features["channel"])
    cd = c.truth["cd"].to_numpy()
    assert cd[dist < 150].mean() > 3 * cd[dist > 1000].mean()  # measured 7.3
    assert (c.parcels["dlbm"].to_numpy()[dist < 150] == "0101").mean() > 0.7  # low land: paddy
    c3 = (c.truth["true_class"] == 3).to_numpy()
    assert c3.any() and (dist[c3] < 400).all()


def test_karst_cd_is_contaminated_only_at_low_ph():
    c = make_county("karst", 1, n_parcels=600)
    rep = shapely.get_coordinates(shapely.point_on_surface(c.parcels.geometry.values))
    karst = c.values_at(rep)["karst"].to_numpy() > 0.9
    high = karst & (c.truth["ph"].to_numpy() > 7.5)
    assert high.sum() >= 30
    values = c.truth.loc[high, ["parcel_id", "ph", "cd", "hg", "as", "pb", "cr", "landuse"]]
    values = values.rename(columns={"parcel_id": "sample_id"})
    at_own_ph = classify_samples(values)["point_class"]
    at_ph5 = classify_samples(values.assign(ph=5.0))["point_class"]
    # measured: 58 % class 2 at the parcels' own pH, 98 % at pH 5
    assert (at_own_ph >= 2).mean() <= 0.7 and (at_ph5 >= 2).mean() >= 0.9
    assert c.truth.loc[karst, "cd"].median() > 2 * c.truth.loc[~karst, "cd"].median()


def test_sparse_townships_have_a_fifth_of_the_density():
    c = make_county("sparse", 2, n_parcels=600)
    towns = c.features["townships"]
    xy = shapely.get_coordinates(c.samples.geometry.values)
    hits = np.array([shapely.contains_xy(g, xy[:, 0], xy[:, 1]).sum()
                     for g in towns.geometry.values])
    farm = np.array([c.parcels.loc[c.parcels["township"] == t].area.sum() / 1e6
                     for t in towns["township"]])
    density = hits / farm
    sparse = towns["sparse"].to_numpy()
    assert sparse.sum() == 2
    assert density[sparse].mean() <= density[~sparse].mean() / 3  # measured 0.14
    assert c.features["enterprises"]["township"].iloc[0] in set(towns["township"][sparse])


def test_noisy_lab_has_gross_errors_and_larger_error():
    noisy, plain = make_county("noisy", 1, n_parcels=300), make_county("plumes", 1,
                                                                        n_parcels=300)

    def spread(county):
        reported = pd.to_numeric(county.samples["Pb"], errors="coerce").to_numpy()
        ok = county.sample_truth["gross_error"] == ""
        return np.std(np.log(reported / county.sample_truth["pb"].to_numpy())[ok])

    assert (noisy.sample_truth["gross_error"] != "").sum() >= 3
    assert spread(noisy) > 2 * spread(plain)  # CV 30 % vs 10 % (+ the same 10 % micro)


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario 'floods'"):
        make_county("floods", 1)
    with pytest.raises(ValueError, match="area_km2 >= 16"):
        make_county("plumes", 1, area_km2=4.0)
    assert list(SCENARIOS) == ["plumes", "irrigation", "karst", "sparse", "noisy"]


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def small_run():
    return evaluate_county(make_county("plumes", 1, n_parcels=400))


def test_small_county_metrics_stay_above_recorded_floors(small_run):
    rows = small_run.rows.set_index("method")
    assert list(rows.index) == ["farmland", "nearest", "idw"]
    farmland = rows.loc["farmland"]
    # measured with the precautionary default (risk rule, P(3) >= 0.3, P(>=2) >= 0.5):
    # agreement 0.834, class-3 recall 0.747, contaminated called clean 0.164, unclassified
    # 0.000; with the median rule it was 0.843 / 0.488 / 0.173. Calibration gap 0.489
    # with the harness calibration (0.346 before), 0.624 with the map refitted after the
    # structure test looked at several distances: on 400 parcels a perfectly calibrated
    # predictor shows 0.350 (calibration_floor; 0.444 after the structure-test change), so
    # one small county cannot measure it
    # (tests/test_calibration.py measures it on held-out counties pooled). With the
    # variograms of linear-trend residuals (2026-12-05) and the map refitted for them: the
    # same agreement, recall, contaminated called clean and unclassified share; gap 0.491
    assert farmland["agreement"] >= 0.82
    assert farmland["class3_recall"] >= 0.70
    assert farmland["contaminated_called_clean"] <= 0.18
    assert farmland["unclassified_share"] <= 0.01
    assert farmland["calibration_gap"] <= 0.65
    assert 0.3 <= farmland["calibration_floor"] <= 0.5
    assert farmland["agreement"] > rows.loc["nearest", "agreement"]
    assert rows["n_samples"].nunique() == 1  # every method saw the same samples


def test_the_outlier_screen_is_scored_against_the_known_gross_errors(small_run):
    """The plumes county of seed 1 (400 parcels): its lab report's gross errors, counted
    from the truth, are each either flagged, kept as a hot spot or unseen."""
    rows = small_run.rows.set_index("method")
    truth = make_county("plumes", 1, n_parcels=400).sample_truth["gross_error"]
    errors = sum(len(cell.split(",")) for cell in truth if cell)
    farmland = rows.loc["farmland"]
    assert farmland["gross_errors"] == errors > 0
    assert (farmland["gross_flagged"] + farmland["gross_hot_spot"] + farmland["gross_unseen"]
            == errors)
    assert rows.loc[["nearest", "idw"], "gross_errors"].isna().all()


def test_screen_scores_by_hand():
    from farmland.classify.outliers import ACTIONS, KEPT_ACTION
    from farmland.validation import screen_scores

    listed = pd.DataFrame({"sample_id": ["S1", "S2", "S3", "S3"],
                           "element": ["cd", "pb", "cd", "pb"],
                           "action": [ACTIONS["flag"], ACTIONS["flag"], KEPT_ACTION,
                                      KEPT_ACTION]})
    gross = pd.Series({"S1": "cd", "S3": "pb", "S4": "hg,as", "S5": ""})
    assert screen_scores(listed, gross) == {
        "gross_errors": 4, "gross_flagged": 1, "gross_hot_spot": 1, "gross_unseen": 2,
        "real_flagged": 1, "real_hot_spot": 1}
    assert screen_scores(None, gross)["gross_unseen"] == 4


def test_small_county_predictions_carry_probabilities(small_run):
    pred = small_run.predictions
    farmland = pred[pred["method"] == "farmland"]
    total = farmland[["p_class_1", "p_class_2", "p_class_3"]].sum(axis=1)
    assert np.allclose(total.dropna(), 1.0, atol=1e-6)
    assert pred.loc[pred["method"] == "idw", "p_class_1"].isna().all()


def test_cli_validate_writes_tables_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    args = ["validate", "--scenario", "karst", "--seed", "1", "--parcels", "200",
            "-o", str(tmp_path)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Issue-15 targets" in result.output
    assert "outlier screen against the" in result.output
    rows = pd.read_csv(tmp_path / "validation.csv", encoding="utf-8-sig")
    summary = pd.read_csv(tmp_path / "validation_summary.csv", encoding="utf-8-sig")
    assert list(rows["method"]) == ["farmland", "nearest", "idw"]
    assert list(summary["scenario"]) == ["karst"] * 3 + ["mean"] * 3
    again = runner.invoke(main, args)
    assert again.exit_code == 2
    assert "--overwrite" in again.output


def test_a_county_profile_is_scored_next_to_todays_rule(tmp_path):
    profile = tmp_path / "strict_distance.toml"
    profile.write_text("[interpolation]\nmax_distance_m = 250.0\n", encoding="utf-8")
    rows = evaluate_county(make_county("sparse", 1, n_parcels=200),
                           rules=profile).rows.set_index("method")
    assert list(rows.index) == ["farmland", "shipped_rules", "nearest", "idw"]
    assert rows.loc["farmland", "unclassified_share"] > rows.loc["shipped_rules",
                                                                 "unclassified_share"]


def test_the_precautionary_default_finds_more_class_3_than_the_median_rule(tmp_path):
    """The decision rule chosen on the harness (docs/decisions.md "Precautionary classes")
    against the median rule it replaced, on the same 400-parcel plume county: measured
    class-3 recall 0.747 vs 0.488, agreement 0.834 vs 0.843 (0.842 with the variograms of
    linear-trend residuals, 2026-12-05)."""
    median = tmp_path / "median.toml"
    median.write_text('[interpolation]\ndecision = "median"\n', encoding="utf-8")
    rows = evaluate_county(make_county("plumes", 1, n_parcels=400), rules=median,
                           baselines=()).rows.set_index("method")
    shipped, old = rows.loc["shipped_rules"], rows.loc["farmland"]
    assert shipped["class3_recall"] >= old["class3_recall"] + 0.2
    assert shipped["contaminated_called_clean"] <= old["contaminated_called_clean"]
    assert shipped["agreement"] >= old["agreement"] - 0.02


def test_fallback_lines_count_each_farmland_method_over_its_own_runs():
    # a validated profile runs beside the shipped one: two farmland runs per county, so
    # "3 of 2 runs" (fallbacks of both over the runs of one) must not happen
    from farmland.cli.validate import fallback_lines

    results = pd.DataFrame({
        "method": ["farmland", "shipped_rules", "idw", "farmland", "shipped_rules", "idw"],
        "kriging_fallbacks": ["cr", "cr,as", "", "", "as", ""]})
    assert fallback_lines(results) == [
        "farmland: kriging fell back to IDW in 1 of 2 run(s) (column kriging_fallbacks)",
        "shipped_rules: kriging fell back to IDW in 2 of 2 run(s) (column kriging_fallbacks)"]
    assert fallback_lines(results.assign(kriging_fallbacks="")) == []
