"""The harness of the planner's realised effect (issue 15 item 4): plan, sample the truth
with the scenario's lab, reclassify, compare with the prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from farmland.cli import main
from farmland.rules import load_rules
from farmland.runs.pipeline import ClassificationInputs, classify_run
from farmland.standards import load_standard
from farmland.validation import (
    evaluate_plans,
    make_county,
    plan_target_check,
    summarise_plans,
)
from farmland.validation.planner_effect import movement_by_class, screened_samples
from farmland.validation.synthetic import lab_report_at


def test_new_samples_get_the_scenario_lab_and_the_same_draws_for_every_plan():
    county = make_county("noisy", 1, n_parcels=200)
    xy = county.samples.geometry.get_coordinates().to_numpy()[:6] + 10.0
    a = lab_report_at(county, xy, part=5)
    assert a["sample_id"].tolist() == ["N001", "N002", "N003", "N004", "N005", "N006"]
    assert list(a.columns) == list(county.samples.columns)
    pd.testing.assert_frame_equal(a, lab_report_at(county, xy, part=5))
    # another plan of as many points: its k-th point gets the same pH error draw
    moved = xy + 40.0
    b = lab_report_at(county, moved, part=5)
    true_a, true_b = county.values_at(xy)["ph"], county.values_at(moved)["ph"]
    np.testing.assert_allclose(a["pH"] - true_a, b["pH"] - true_b, atol=0.011)
    assert not a["pH"].equals(lab_report_at(county, xy, part=6)["pH"])


@pytest.fixture(scope="module")
def small_plans():
    return evaluate_plans(make_county("plumes", 1, n_parcels=400),
                          modes=("uncertainty", "random"))


def test_small_county_plans_are_measured_and_predicted(small_plans):
    rows = small_plans.set_index("mode")
    assert list(rows.index) == ["uncertainty", "random"]
    n = rows["n_samples"].iloc[0]
    assert (rows["n_points"] == round(0.05 * n)).all()
    # nothing unclassified here: inside classified parcels = the county
    np.testing.assert_allclose(rows["realised"], rows["realised_all"])
    assert (rows["misclassified_before"] > 0).all()
    assert rows.loc["uncertainty", "predicted"] > rows.loc["random", "predicted"] > 0


def test_summary_and_targets_by_hand():
    rows = pd.DataFrame({
        "scenario": ["a"] * 4 + ["b"] * 4, "seed": 1,
        "mode": ["uncertainty", "coverage", "combined", "random"] * 2,
        "n_points": 10, "misclassified_before": 1000.0,
        "realised": [400.0, 100.0, 300.0, 50.0, 200.0, 100.0, 90.0, 50.0],
        "predicted": [300.0, 80.0, 200.0, 40.0, 200.0, 60.0, 100.0, 30.0],
        "misclassified_all_before": 1000.0,
        "realised_all": [400.0, 100.0, 300.0, 50.0, 200.0, 100.0, 90.0, 50.0],
        "predicted_all": 0.0, "realised_own": 0.0, "predicted_own": 0.0, "plan_seconds": 1.0})
    summary = summarise_plans(rows)
    mean = summary[summary["scenario"] == "mean"].set_index("mode")
    assert mean.loc["uncertainty", "realised"] == 300.0
    assert mean.loc["uncertainty", "ratio"] == pytest.approx(250 / 300)
    targets = plan_target_check(summary).set_index("target")
    assert targets.loc["uncertainty_vs_coverage", "value"] == pytest.approx(3.0)
    assert targets.loc["uncertainty_vs_random", "value"] == pytest.approx(6.0)
    # scenario b: combined 90 against coverage 100 on the county
    assert targets.loc["combined_vs_coverage", "value"] == pytest.approx(-10.0)
    assert not targets.loc["combined_vs_coverage", "met"]
    assert targets.loc["prediction", "met"]


def test_a_baseline_that_removed_nothing_gives_no_ratio():
    """Coverage points that removed 0 亩 (a 200-parcel county can): the ratio is NaN, not
    met, and no ZeroDivisionError ends the run."""
    rows = pd.DataFrame({
        "scenario": "a", "seed": 1, "mode": ["uncertainty", "coverage", "combined", "random"],
        "n_points": 10, "misclassified_before": 1000.0,
        "realised": [-275.0, 0.0, -419.0, 559.0], "predicted": [648.0, 41.0, 513.0, 39.0],
        "misclassified_all_before": 1000.0, "realised_all": [-275.0, 0.0, -419.0, 559.0],
        "predicted_all": 0.0, "realised_own": 0.0, "predicted_own": 0.0, "plan_seconds": 1.0})
    targets = plan_target_check(summarise_plans(rows)).set_index("target")
    assert np.isnan(targets.loc["uncertainty_vs_coverage", "value"])
    assert not targets.loc["uncertainty_vs_coverage", "met"]
    assert targets.loc["uncertainty_vs_random", "value"] == pytest.approx(-275 / 559)


def test_cli_validate_plans(tmp_path):
    args = ["validate", "--plans", "--scenario", "karst", "--seed", "1", "--parcels", "200",
            "-o", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "plans.csv", encoding="utf-8-sig")
    assert rows["mode"].tolist() == ["uncertainty", "coverage", "combined", "random"]
    summary = pd.read_csv(tmp_path / "plans_summary.csv", encoding="utf-8-sig")
    assert summary["scenario"].tolist() == ["karst"] * 4 + ["mean"] * 4
    assert "met" in result.output


def test_cli_validate_refuses_draws_without_plans(tmp_path):
    args = ["validate", "--scenario", "karst", "--seed", "1", "--parcels", "200",
            "--lab-draws", "3", "-o", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--random-draws and --lab-draws average the planner's draws: add --plans" in (
        result.output)
    assert not any(tmp_path.iterdir())


def test_by_class_columns_add_up_to_the_classified_totals(small_plans):
    """The per-class breakdown of the first run's classes splits the inside figures."""
    for row in small_plans.itertuples():
        r = row._asdict()
        for what, total in (("wrong", "misclassified_before"), ("realised", "realised"),
                            ("predicted", "predicted")):
            assert sum(r[f"{what}_{c}"] for c in (1, 2, 3)) == pytest.approx(r[total], abs=1e-6)
        assert all(r[f"expected_wrong_{c}"] >= 0 for c in (1, 2, 3))
    summary = summarise_plans(small_plans.assign(scenario="plumes"))
    assert {"wrong_2", "expected_wrong_2", "realised_2", "predicted_2"} <= set(summary)


def test_movement_by_class_by_hand():
    """A class-2 parcel at p1 = ½ (z = 0) whose variance falls to ¾: the pre-posterior move
    has sd ½; p1 after = Φ(−0.25/√¾) means the mean rose by 0.25 σ: bias +0.5 (of the
    predicted sd), spread 0.0625 / 0.25 = 0.25. Its own-point twin and a fixed parcel are
    left out; a class-1 parcel that did not move has bias 0 and spread 0."""
    from scipy.stats import norm
    up = norm.cdf(-0.25 / np.sqrt(0.75))
    details = pd.DataFrame({
        "mode": "uncertainty", "kind": ["interpolated", "interpolated", "fixed", "interpolated"],
        "own": [False, True, False, False], "area_mu": [10.0, 5.0, 5.0, 2.0],
        "class_before": [2.0, 2.0, 2.0, 1.0], "p1_before": [0.5, 0.5, 0.5, 0.8],
        "p1_after": [up, 0.9, 0.9, norm.cdf(norm.ppf(0.8) / np.sqrt(0.5))],
        "variance_ratio": [0.75, 0.75, np.nan, 0.5]})
    out = movement_by_class(details).set_index("class")
    assert out.loc[2, "parcels"] == 1 and out.loc[2, "area_mu"] == 10.0
    assert out.loc[2, "bias"] == pytest.approx(0.5)
    assert out.loc[2, "spread"] == pytest.approx(0.25)
    assert out.loc[1, "bias"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc[1, "spread"] == pytest.approx(0.0, abs=1e-12)


def test_details_rows_per_parcel():
    county = make_county("plumes", 1, n_parcels=400)
    details: list = []
    evaluate_plans(county, modes=("random",), details=details)
    (frame,) = details
    assert len(frame) == len(county.parcels)
    assert (frame["mode"] == "random").all()
    assert frame["expected_before"].sum() >= frame["expected_after"].sum() - 1e-9
    r = frame["variance_ratio"].dropna()
    assert len(r) and ((r > 0) & (r <= 1)).all()


def _realised_inside(frame: pd.DataFrame) -> float:
    """Misclassified 亩 removed inside the parcels classified before, from the details."""
    inside = frame["class_before"].notna()
    wrong0 = frame["class_before"] != frame["true_class"]
    wrong1 = frame["class_after"].isna() | (frame["class_after"] != frame["true_class"])
    area = frame["area_mu"]
    return float(area[inside & wrong0].sum() - area[inside & wrong1].sum())


def test_random_baseline_is_the_mean_of_its_draws():
    """Two random plans per county: the first is the single draw (the county's seed),
    the second another seed; the row is their mean, counted from the per-parcel details."""
    from farmland.validation.planner_effect import draw_seed

    assert draw_seed(7, 0) == 7 and draw_seed(7, 1) == draw_seed(7, 1) != draw_seed(7, 2)
    county = make_county("plumes", 1, n_parcels=400)
    one: list = []
    single = evaluate_plans(county, modes=("random",), details=one).iloc[0]
    two: list = []
    mean = evaluate_plans(county, modes=("random",), details=two, random_draws=2).iloc[0]
    assert single["draws"] == 1 and mean["draws"] == 2
    assert [int(f["draw"].iloc[0]) for f in two] == [0, 1]
    pd.testing.assert_frame_equal(one[0], two[0])
    first, second = (_realised_inside(f) for f in two)
    assert single["realised"] == pytest.approx(first)
    assert first != second  # another plan, another effect
    assert mean["realised"] == pytest.approx((first + second) / 2)
    assert mean["n_points"] == single["n_points"]
    with pytest.raises(ValueError, match="random_draws"):
        evaluate_plans(county, modes=("random",), random_draws=0)


def test_lab_draws_average_the_reports_of_one_plan(monkeypatch):
    """Two lab reports of the same uncertainty plan: the first is the single report of
    before, the second another stream; realised = their mean, predicted unchanged."""
    import importlib

    # the package exports a function of the module's name; take the module itself
    pe = importlib.import_module("farmland.validation.planner_effect")

    assert pe.lab_part(0) == 5 and pe.lab_part(1) == 1005
    county = make_county("noisy", 1, n_parcels=400)
    both = evaluate_plans(county, modes=("uncertainty",), lab_draws=2).iloc[0]
    first = evaluate_plans(county, modes=("uncertainty",)).iloc[0]
    monkeypatch.setattr(pe, "lab_part", lambda draw: 1005)
    second = evaluate_plans(county, modes=("uncertainty",)).iloc[0]
    assert both["lab_draws"] == 2 and first["lab_draws"] == 1
    assert first["realised"] != second["realised"]  # other errors, another effect
    for column in ("realised", "realised_all", "realised_own", "realised_2"):
        assert both[column] == pytest.approx((first[column] + second[column]) / 2)
    for column in ("predicted", "misclassified_before", "n_points"):
        assert both[column] == first[column] == second[column]


def test_second_classification_keeps_the_leave_one_out_suspects(tmp_path):
    # plumes seed 1 at 400 parcels: the first run's leave-one-out rule finds S0073's Cr
    # suspect; the harness's second classification (the first run's models, one new
    # sample far away) must screen it as `farmland classify --variograms reuse` does,
    # not krige it again
    county = make_county("plumes", 1, n_parcels=400)
    county.parcels.to_file(tmp_path / "parcels.gpkg", layer="parcels", driver="GPKG")
    county.samples.to_file(tmp_path / "samples.gpkg", layer="samples", driver="GPKG")
    inputs = ClassificationInputs(parcels=tmp_path / "parcels.gpkg",
                                  samples=tmp_path / "samples.gpkg", seed=county.seed)
    rules = load_rules()
    first = classify_run(inputs, rules=rules)
    loo = first.outliers[first.outliers["check"] == "loo"]
    assert loo[["sample_id", "element"]].values.tolist() == [["S0073", "cr"]]
    s0073 = shapely.get_coordinates(
        county.samples.loc[county.samples["sample_id"] == "S0073"].geometry.values)[0]
    xy = shapely.get_coordinates(shapely.point_on_surface(county.parcels.geometry.values))
    far = xy[np.argmax(np.hypot(*(xy - s0073).T))]
    new = lab_report_at(county, far[None, :], part=5)
    new.to_file(tmp_path / "new.gpkg", layer="samples", driver="GPKG")
    both = ClassificationInputs(parcels=inputs.parcels,
                                samples=[inputs.samples, tmp_path / "new.gpkg"], seed=county.seed)
    _, classified, surfaces = screened_samples(both, rules, first.surfaces, load_standard())
    row = classified.set_index("sample_id").loc["S0073"]
    assert bool(row["cr_suspect"])
    assert surfaces.models == first.surfaces.models  # reused, not refitted
    assert len(classified) == len(first.samples) + 1
