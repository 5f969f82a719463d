"""End to end: `farmland demo` on the bundled county, run twice.

Checks what the issues promise of the demo: every parcel classified or explicitly
unclassified, the 2023 rate just below 91 % and the gap plan closing it, the planted
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


def _run_demo(root: Path) -> Path:
    out, maps = root / "out", root / "maps"
    result = CliRunner().invoke(main, ["-q", "demo", "--data", str(DATA), "-o", str(out),
                                       "--maps", str(maps)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return _run_demo(tmp_path_factory.mktemp("demo1"))


@pytest.fixture(scope="module")
def demo_again(tmp_path_factory) -> Path:
    return _run_demo(tmp_path_factory.mktemp("demo2"))


def _parcels(demo: Path, year: str = "2023") -> gpd.GeoDataFrame:
    return gpd.read_file(demo / "out" / year / "classification.gpkg", layer="parcels")


def test_every_parcel_has_a_class_or_an_explicit_reason(demo):
    parcels = _parcels(demo)
    assert len(parcels) == 30155
    unclassified = parcels["final_class"].isna()
    assert parcels.loc[unclassified, "rule"].str.startswith("unclassified:").all()
    assert parcels.loc[~unclassified, "final_class"].isin([1, 2, 3]).all()
    assert set(parcels["rule"].str.split(";").str[0]) <= {
        "points:strict_override", "points:majority", "interpolated:area_majority",
        "unclassified:too_far", "unclassified:no_usable_samples", "unclassified:no_estimate",
        "unclassified:too_few_samples"}
    # the crop adjustment fired on the demo, both ways
    assert parcels["rule"].str.contains("crops:2->1").any()
    assert parcels["rule"].str.contains("crops:3->2").any()


def test_rate_2023_just_below_target_and_gap_plan_closes_it(demo):
    rate = pd.read_csv(demo / "out" / "2023" / "rate.csv", encoding="utf-8-sig")
    county = rate[rate["level"] == "county"].iloc[0]
    assert 0.85 <= county["rate"] < 0.91
    assert county["gap_mu"] > 0
    parcels = _parcels(demo)
    crops = gpd.read_file(demo / "out" / "2023" / "classification.gpkg", layer="crops")
    plan = pd.read_csv(demo / "out" / "2023" / "gap_plan.csv", encoding="utf-8-sig",
                       dtype={"parcel_id": str})
    ledger = read_measures(DATA / "measures_2023.csv")
    closed = safe_utilisation_rate(parcels, apply_gap_plan(ledger, plan, 2023), crops=crops,
                                   year=2023)
    assert closed.rate >= 0.91


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
    first = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file())
    second = sorted(p.relative_to(demo_again) for p in demo_again.rglob("*") if p.is_file())
    assert first == second
    # timestamps live only in manifests and in the run-history / Excel containers
    # (report.html, rate.json and diff.json name the output paths, which differ here)
    stamped = {"manifest.json", "farmland_runs.gpkg", "report.xlsx", "report.html", "rate.json",
               "diff.json"}
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
