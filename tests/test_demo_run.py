"""End to end: `farmland demo` on the bundled county, run twice.

Checks what the issues promise of the demo: every parcel classified or explicitly
unclassified, the 2023 rate in its three readings with the evidence behind it, the planted
ledger errors reported, the under-sampled townships flagged and given points, the map
within its size budget, a dynamic adjustment with a diff whose flows add up, and
byte-identical outputs from a second run (only the manifests carry a timestamp).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from farmland.cli import main
from farmland.io.readers import read_measures
from farmland.rate.accounting import safe_utilisation_rate
from farmland.rate.gap import apply_gap_plan

DATA = Path(__file__).resolve().parents[1] / "data" / "demo"
UNDER_SAMPLED = ("马岭乡", "华侨管理区")


def _run_demo(root: Path, jobs: int) -> Path:
    out, maps = root / "out", root / "maps"
    result = CliRunner().invoke(main, ["-q", "demo", "--data", str(DATA), "-o", str(out),
                                       "--maps", str(maps), "--jobs", str(jobs)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo as it runs by default on two cores: two steps at a time."""
    return _run_demo(tmp_path_factory.mktemp("demo1"), jobs=2)


@pytest.fixture(scope="module")
def demo_again(tmp_path_factory) -> Path:
    """The demo with its steps one after another, in the order of the chain."""
    return _run_demo(tmp_path_factory.mktemp("demo2"), jobs=1)


def _parcels(demo: Path, year: str = "2023") -> gpd.GeoDataFrame:
    return gpd.read_file(demo / "out" / year / "classification.gpkg", layer="parcels")


def test_every_parcel_has_a_class_or_an_explicit_reason(demo):
    parcels = _parcels(demo)
    assert len(parcels) == 30155
    unclassified = parcels["final_class"].isna()
    assert parcels.loc[unclassified, "rule"].str.startswith("unclassified:").all()
    assert parcels.loc[~unclassified, "final_class"].isin([1, 2, 3]).all()
    assert set(parcels["rule"].str.split(";").str[0]) <= {
        "points:strict_override", "points:majority", "points:evidence",
        "interpolated:area_majority",
        "unclassified:too_far", "unclassified:no_usable_samples", "unclassified:no_estimate",
        "unclassified:too_few_samples"}
    # the crop adjustment fired on the demo: 2 -> 1 on compliant crops, 1 -> 2 on any
    # exceedance; 3 -> 2 needs every sample compliant, which no demo parcel has (its
    # karst parcels carry some grade-2 samples, and such a class 2 could never count)
    rules = parcels["rule"].str.extract(r"(crops:\S+)")[0].value_counts().to_dict()
    assert rules.get("crops:2->1", 0) > 0 and rules.get("crops:1->2", 0) > 0
    assert "crops:3->2" not in rules


def test_rate_2023_readings_evidence_and_the_class3_first_gap_plan(demo):
    """The demo's 2023 crops respond to the measures (123 of the 132 crop samples on
    treated class-2 land comply), so the official accounting, which counts untested treated
    land at that compliance rate, lands below the 91 % target; every measure counting gives
    more, only parcels with compliant own samples far less (most treated land has none).
    With the 2024 re-sampling and ledger the official rate rises to within 1.5 pp of 91 %."""
    rate = pd.read_csv(demo / "out" / "2023" / "rate.csv", encoding="utf-8-sig")
    county = rate[rate["level"] == "county"].iloc[0]
    assert county["rate"] == pytest.approx(county["rate_official"])
    # issue 14 item 8 regenerated the demo for these readings (89.3 / 95.3 / 12.2 % when
    # recorded); before, crops without a measure effect gave 54.9 / 87.6 / 9.3 %.
    # The precautionary class rule ([interpolation] decision = "risk") changed them to
    # 88.7 / 94.8 / 14.9 %: it classes more land 3 (4,515 instead of 3,197 亩), which counts
    # only with a strict-control measure and a closed loop at the minimum stage (D 3,455 亩,
    # 77 % of it; 625 亩 stop below that stage), while class-2 land counts at the crop
    # compliance rate (93 %). So official fell 89.3 -> 88.7 % (range [0.89, 0.91) ->
    # [0.88, 0.90)); parcel_verified, whose numerator is own-sample class 2 plus D, rose with
    # D (2,502 -> 3,455 亩): 12.2 -> 14.9 %, range [0.10, 0.15) -> [0.12, 0.18);
    # measures_only 95.3 -> 94.8 % stays in [0.94, 0.97). The leave-one-out outlier rule
    # (TR0019 Cd left out of the surfaces, issue 15 item 3) made them 88.1 / 94.1 / 14.8 %.
    # The fallback variance (a metal whose kriging fell back to IDW is uncertain, not
    # certain, under the risk rule) made them 87.5 / 93.4 / 14.7 %: more class-2 land on
    # that metal's thresholds, counted at the crop compliance rate (ranges [0.88, 0.90) ->
    # [0.87, 0.89), [0.94, 0.97) -> [0.93, 0.96)). The structure test at several distances
    # (lead is structured at 1-4 km, so it is kriged, not IDW) made them 86.6 / 92.6 /
    # 14.6 %: 280 亩 more class-2 land, most of it in the sparse 华侨管理区 (ranges
    # [0.87, 0.89) -> [0.86, 0.88), [0.93, 0.96) -> [0.92, 0.95))
    assert 0.86 <= county["rate_official"] < 0.88
    assert 0.92 <= county["rate_measures_only"] < 0.95
    assert 0.12 <= county["rate_parcel_verified"] < 0.18
    assert county["evidence_rate_mu"] > 0.9 * county["achieved2_mu"]
    assert county["gap_mu"] > 0
    rate24 = pd.read_csv(demo / "out" / "2024" / "rate.csv", encoding="utf-8-sig")
    county24 = rate24[rate24["level"] == "county"].iloc[0]
    # 2024 was >= 91 % (92.5 %) under the median rule; under the precautionary rule it is
    # 90.7 % (gap 105.7 亩), just below: more class-3 land (5,367 亩 in 2024), which counts
    # only where the closed loop reached the minimum stage (D 4,431 亩), and the demo's
    # ledger settings (make_demo.py MEASURE_COVERAGE_2024, CONTROL_FATES) were tuned under
    # the median rule. The leave-one-out rule and the variogram refit rule (2024 reuses the
    # 2023 variograms, issue 19 item 2) made it 89.9 % (gap 343.9 亩): make_demo.py laid
    # the ledgers on classes without the screen and with refitted variograms. What the demo
    # shows now: the re-sampling year rises over 2023 (88.1 -> 89.9 %) and ends within
    # 1.5 pp of the target. With the fallback variance: 87.5 -> 89.3 %, within 2 pp; with
    # lead kriged (the structure test at several distances) 86.6 -> 89.4 %
    assert county["rate_official"] < county24["rate_official"]
    assert abs(county24["rate_official"] - 0.91) < 0.02 and county["rate_official"] < 0.91
    # the per-parcel accounting sums exactly to the numerators, county and township
    per_parcel = pd.read_csv(demo / "out" / "2023" / "rate_parcels.csv", encoding="utf-8-sig",
                             dtype={"parcel_id": str})
    assert per_parcel["counted_mu"].sum() == pytest.approx(county["numerator_mu"], abs=1e-6)
    towns = rate[rate["level"] == "township"].set_index("name")
    counted = per_parcel.groupby("township")["counted_mu"].sum()
    assert counted.to_dict() == pytest.approx(towns["numerator_mu"].to_dict(), abs=1e-6)
    assert (per_parcel["counted_mu"] > 0).sum() > 0
    # evidence behind C adds up to C
    c_mu = county["evidence_own_mu"] + county["evidence_rate_mu"] + county["evidence_none_mu"]
    assert c_mu == pytest.approx(county["achieved2_mu"])
    # gap plan: every uncontrolled class-3 parcel first
    parcels = _parcels(demo)
    plan = pd.read_csv(demo / "out" / "2023" / "gap_plan.csv", encoding="utf-8-sig",
                       dtype={"parcel_id": str})
    open3 = per_parcel["status"].isin(["uncontrolled", "loop_incomplete"])
    n3 = int(open3.sum())
    assert n3 > 0 and plan["final_class"].head(n3).eq(3).all()
    assert set(plan.loc[plan["final_class"] == 3, "parcel_id"]) == set(
        per_parcel.loc[open3, "parcel_id"])
    # under the measures-only reading the plan closes the gap
    crops = gpd.read_file(demo / "out" / "2023" / "classification.gpkg", layer="crops")
    ledger = read_measures(DATA / "measures_2023.csv")
    closed = safe_utilisation_rate(parcels, apply_gap_plan(ledger, plan, 2023), crops=crops,
                                   year=2023, accounting="measures_only")
    assert closed.rate >= 0.91


def test_closed_loop_zones_and_lots_account_for_every_mu_once(demo):
    """Issue 18: the coverage table, the zone notice and the lot list agree with the
    parcel layer, and the rate's D is exactly the class-3 land whose loop reached the
    minimum stage and that has a strict-control measure."""
    run = demo / "out" / "2023"
    parcels = _parcels(demo)
    class3 = parcels.loc[parcels["final_class"] == 3]
    area3 = class3["area_mu"].sum()
    loop = pd.read_csv(run / "control_parcels.csv", encoding="utf-8-sig",
                       dtype={"parcel_id": str, "strict_measures": str})
    assert sorted(loop["parcel_id"]) == sorted(class3["parcel_id"])
    towns = pd.read_csv(run / "control_townships.csv", encoding="utf-8-sig")
    county = towns.iloc[-1]
    assert county["class3_mu"] == pytest.approx(area3, abs=1e-6)
    statuses = ["none_mu", "notified_mu", "inspected_mu", "harvest_checked_mu", "closed_mu"]
    assert county[statuses].sum() == pytest.approx(area3, abs=1e-6)
    assert towns.iloc[:-1]["class3_mu"].sum() == pytest.approx(area3, abs=1e-6)
    # the realistic gaps of the demo ledger: every status occurs, and contradictions too
    assert (county[statuses] > 0).all() and 0.5 < county["coverage_closed"] < 0.8
    contradictions = pd.read_csv(run / "control_contradictions.csv", encoding="utf-8-sig")
    assert set(contradictions["kind"]) == {"forbidden_planted", "closed_but_exceeding",
                                           "measure_without_designation", "not_class3"}
    notice = pd.read_csv(run / "zone_notice.csv", encoding="utf-8-sig")
    area_col = "面积（亩） Area (mu)"
    assert notice[area_col].iloc[-1] == pytest.approx(round(area3, 2))
    assert notice[area_col].iloc[:-1].sum() == pytest.approx(round(area3, 2))
    lots_in = pd.read_csv(DATA / "grain_lots_2023.csv", encoding="utf-8-sig", dtype=str)
    lots = pd.read_csv(run / "lot_screening.csv", encoding="utf-8-sig", dtype=str)
    assert sorted(lots["lot_id"]) == sorted(lots_in["批次号"])
    assert set(lots["risk"]) == {"high 高", "medium 中", "low 低"}
    rate = pd.read_csv(run / "rate.csv", encoding="utf-8-sig")
    c = rate[rate["level"] == "county"].iloc[0]
    gated = loop["meets_min"].astype(str).eq("True") & loop["strict_measures"].notna()
    assert c["controlled3_mu"] + c["contradicted3_mu"] == pytest.approx(
        loop.loc[gated, "area_mu"].sum(), abs=1e-6)
    assert (c["controlled3_mu"] + c["contradicted3_mu"] + c["loop_incomplete3_mu"]
            + c["uncontrolled3_mu"]) == pytest.approx(area3, abs=1e-6)
    assert c["loop_incomplete3_mu"] > 0
    # 2024 carries the designations of loops closed in 2023; the diff lists the changes
    loop24 = pd.read_csv(demo / "out" / "2024" / "control_parcels.csv", encoding="utf-8-sig",
                         dtype=str)
    carried = loop24["carried_from"].notna()
    assert carried.any() and set(loop24.loc[carried, "previous_status"]) == {"closed"}
    changes = pd.read_csv(demo / "out" / "diff_2023_2024" / "loop_changes.csv",
                          encoding="utf-8-sig", dtype=str)
    assert {"entered", "same", "advanced"} <= set(changes["change"])


def test_ledger_errors_are_reported(demo):
    unknown = pd.read_csv(demo / "out" / "2023" / "unknown_measures.csv", encoding="utf-8-sig")
    assert len(unknown) == 3
    mismatches = pd.read_csv(demo / "out" / "2023" / "mismatches.csv", encoding="utf-8-sig")
    assert len(mismatches) >= 1


def test_under_sampled_townships_are_flagged_and_get_points(demo):
    flags = demo / "out" / "2023" / "flags.gpkg"
    sparse = gpd.read_file(flags, layer="sparse_townships")
    assert set(UNDER_SAMPLED) <= set(sparse["township"])
    plan = gpd.read_file(demo / "out" / "2023" / "plan.gpkg", layer="plan")
    counts = plan["township"].value_counts()
    assert all(counts.get(t, 0) >= 5 for t in UNDER_SAMPLED)
    assert len(plan) == 60


def test_map_is_within_budget_and_offline(demo):
    html = (demo / "maps" / "demo_county.html").read_text(encoding="utf-8")
    assert len(html.encode()) <= 15e6
    assert '<script src="http' not in html and '<link href="http' not in html


def test_dynamic_adjustment_diff_adds_up(demo):
    flows = pd.read_csv(demo / "out" / "diff_2023_2024" / "flows.csv", encoding="utf-8-sig",
                        index_col=0)
    total = _parcels(demo)["area_mu"].sum()
    assert flows.to_numpy().sum() == pytest.approx(total, rel=1e-9)
    diff = json.loads((demo / "out" / "diff_2023_2024" / "diff.json").read_text("utf-8"))
    effects = diff["reclassification_effect"] + diff["measures_effect"]
    assert effects == pytest.approx(diff["rate_b"] - diff["rate_a"], abs=1e-9)
    assert (_parcels(demo, "2024")["final_class"] != _parcels(demo)["final_class"]).any()


def test_second_run_gives_identical_outputs(demo, demo_again):
    """Run twice, once with two steps at a time and once one after another: the same
    files, byte for byte (so no step reads what a step it does not wait for writes)."""
    first = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file())
    second = sorted(p.relative_to(demo_again) for p in demo_again.rglob("*") if p.is_file())
    assert first == second
    # timestamps live only in manifests and in the run-history / Excel containers
    # (report.html, rate.json and diff.json name the output paths, which differ here;
    # sources.json records the step's timings — the digest checks what it says)
    stamped = {"manifest.json", "farmland_runs.gpkg", "report.xlsx", "report.html", "rate.json",
               "diff.json", "control_notice.xlsx", "sources.json"}
    different = [str(p) for p in first
                 if p.name not in stamped
                 and (demo / p).read_bytes() != (demo_again / p).read_bytes()]
    assert different == []


def test_report_has_geostatistics_charts(demo):
    charts = demo / "out" / "2023" / "report" / "charts"
    for name in ("class_area", "rate", "coverage", "variogram_cd", "crossval_cd"):
        assert (charts / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    crossval = pd.read_csv(demo / "out" / "2023" / "crossval.csv", encoding="utf-8-sig")
    assert list(crossval["variable"]) == ["ph", "cd", "hg", "as", "pb", "cr"]
    assert (crossval["class_accuracy"].dropna().between(0.5, 1.0)).all()


def test_demo_results_match_the_recorded_digest(demo):
    """What every demo output says (tables, layers, JSON; not rendered charts) is what it
    said when tests/data/demo_digest.json was recorded: a refactoring changes no result.
    After an intended change of results, regenerate the file (see tests/demo_digest.py)."""
    from demo_digest import digest

    recorded = json.loads((Path(__file__).parent / "data" / "demo_digest.json").read_text())
    now = digest(demo / "out")
    changed = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    assert changed == [], f"demo outputs whose content changed: {changed}"


def test_demo_change_map_and_run_history_edits(demo, tmp_path, cli):
    """`farmland map --diff` drew the demo's 2023 → 2024 changes, and `farmland runs
    label|delete` work on the demo's run history (on a copy)."""
    import shutil

    html = (demo / "maps" / "demo_diff.html").read_text(encoding="utf-8")
    assert "类别变化" in html and "R0001" in html and "R0002" in html
    changes = gpd.read_file(demo / "out" / "diff_2023_2024" / "changes.gpkg", layer="changes")
    assert len(changes) > 0 and changes["cause"].notna().all()
    ws = tmp_path / "runs.gpkg"
    shutil.copy(demo / "out" / "farmland_runs.gpkg", ws)
    res = cli("runs", "label", ws, "R0002", "2024 加密 resampled")
    assert res.exit_code == 0, res.output
    res = cli("runs", "delete", ws, "R0001")
    assert res.exit_code == 0, res.output
    listing = cli("runs", ws)
    assert "R0002" in listing.output and "R0001" not in listing.output
    assert "2024 加密 resampled" in listing.output
