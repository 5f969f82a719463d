"""``farmland control`` and ``farmland rate --closed-loop`` on the hand-built county of
test_control_loop.py: seven class-3 parcels A..G (10, 20 … 70 亩) side by side in one
village, one class-2 parcel H (5 亩). Expected figures are worked by hand there."""

from __future__ import annotations

import json

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, X0, Y0
from test_control_loop import HEADER, LEDGER, _parcels


def _run(tmp_path, crops=None):
    """classification.gpkg with parcels A..H (50 m squares, touching) and a crops layer."""
    folder = tmp_path / "run"
    folder.mkdir()
    p = _parcels()
    boxes = [shapely.box(X0 + 50 * i, Y0, X0 + 50 * (i + 1), Y0 + 50) for i in range(len(p))]
    gpkg = folder / "classification.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame(p, geometry=boxes, crs=CRS), gpkg, layer="parcels")
    crops = crops if crops is not None else pd.DataFrame({
        "sample_id": ["NP1", "NP2"], "crop": ["maize", "rice"], "year": [2023, 2023],
        "exceeds": [True, False], "parcel_id": ["E", "H"], "grade_cd": [2, 1]})
    pts = gpd.GeoDataFrame(crops, geometry=shapely.points([(X0 + 10, Y0 + 10)] * len(crops)),
                           crs=CRS)
    pyogrio.write_dataframe(pts, gpkg, layer="crops")
    return gpkg


def _files(tmp_path, ledger: str = LEDGER):
    led = tmp_path / "ledger.csv"
    led.write_text(HEADER + ledger, encoding="utf-8-sig")
    measures = tmp_path / "measures.csv"
    measures.write_text("图斑编号,措施类型,措施类别,年度\nA,休耕,严格管控,2023\nC,休耕,严格管控,2023\n",
                        encoding="utf-8-sig")
    lots = tmp_path / "lots.csv"
    lots.write_text("批次号,作物,数量（吨）,乡镇,来源村,来源图斑\n"
                    "L1,稻谷,20,东岩乡,平头村,\n"
                    "L2,稻谷,12.5,东岩乡,,C\n"
                    "L3,玉米,8,东岩乡,,H\n", encoding="utf-8-sig")
    return led, measures, lots


def test_control_writes_coverage_zones_notice_and_lots(cli, tmp_path):
    gpkg = _run(tmp_path)
    led, measures, lots = _files(tmp_path)
    out = tmp_path / "out"
    res = cli("control", gpkg, "--ledger", led, "--measures", measures, "--lots", lots,
              "-o", out)
    assert res.exit_code == 0, res.output
    # 50 of 280 亩 closed (E); C + D + E + G = 190 亩 at designated + inspected
    assert ("闭环 closed loop 2023: 17.9 % of 280.0 亩 class-3 land closed; 67.9 % at the "
            "minimum stage (designated+inspected)") in res.stdout
    # maize NP1 exceeds on E, so maize is controlled in the zone group A..G: the maize
    # found on C, D, E and G is forbidden there, and so is the rice on F
    assert ("矛盾 contradictions: closed_but_exceeding 1, forbidden_planted 5, "
            "measure_without_designation 1, not_class3 1") in res.stdout
    assert "products controlled: leafy_veg, maize, rice" in res.stdout
    towns = pd.read_csv(out / "control_townships.csv", encoding="utf-8-sig")
    county = towns.iloc[-1]
    assert county["township"] == "全县 County" and county["class3_mu"] == 280.0
    assert county["closed_mu"] == 50.0 and county["meets_min_mu"] == 190.0
    parcels = pd.read_csv(out / "control_parcels.csv", encoding="utf-8-sig", dtype=str)
    assert parcels["parcel_id"].tolist() == list("ABCDEFG")
    # every 亩 of class-3 land is in exactly one zone of the notice
    notice = pd.read_csv(out / "zone_notice.csv", encoding="utf-8-sig")
    assert notice.iloc[-1, 0] == "合计 Total"
    assert notice["面积（亩） Area (mu)"].iloc[:-1].sum() == pytest.approx(280.0)
    assert notice["面积（亩） Area (mu)"].iloc[-1] == pytest.approx(280.0)
    zones = gpd.read_file(out / "control.gpkg", layer="product_zones")
    # one contiguous group, split by township: A..F in 东岩乡, G in 清水镇
    assert zones["area_mu"].tolist() == [210.0, 70.0] and zones.crs.to_epsg() == 4545
    loop = gpd.read_file(out / "control.gpkg", layer="loop")
    assert len(loop) == 7 and loop.geometry.notna().all()
    lots_out = pd.read_csv(out / "lot_screening.csv", encoding="utf-8-sig").set_index("lot_id")
    assert lots_out.at["L2", "risk"] == "high 高"          # rice from class-3 parcel C
    assert lots_out.at["L1", "risk"] == "medium 中"        # village holds the rice zone
    assert lots_out.at["L3", "risk"] == "low 低"           # maize from class-2 parcel H
    summary = json.loads((out / "control.json").read_text("utf-8"))
    assert summary["min_stages"] == ["designated", "inspected"]
    assert summary["product_zones"] == {"n_zones": 2, "area_mu": 280.0}
    book = openpyxl.load_workbook(out / "control_notice.xlsx")
    assert book.sheetnames == ["管控区公告 Zone notice", "粮食批次筛查 Lot screening",
                               "闭环覆盖 Loop coverage", "矛盾 Contradictions"]
    assert book["管控区公告 Zone notice"]["A1"].value == "乡镇"
    kml = (out / "product_zones.kml").read_text("utf-8")
    assert "PZ001" in kml
    # outputs are kept unless --overwrite
    again = cli("control", gpkg, "--ledger", led, "-o", out)
    assert again.exit_code == 2 and "output already exists" in again.stderr


def test_a_bad_ledger_is_one_line_and_writes_nothing(cli, tmp_path):
    gpkg = _run(tmp_path)
    led, _, _ = _files(tmp_path, "A,划定,2023-05-01,通过,局,,,\nA,种植巡查,2023-04-20,通过,李四,玉米,,\n")
    out = tmp_path / "out"
    res = cli("control", gpkg, "--ledger", led, "-o", out)
    assert res.exit_code == 2
    lines = [x for x in res.stderr.splitlines() if x.startswith("farmland: error")]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "ledger.csv" in lines[0] and "line 3 (图斑 A)" in lines[0]
    assert "stage dated before an earlier stage" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_rate_counts_d_only_at_the_minimum_stage(cli, tmp_path):
    gpkg = _run(tmp_path)
    led, measures, _ = _files(tmp_path)
    plain = cli("rate", gpkg, "--measures", measures, "-o", tmp_path / "plain")
    gated = cli("rate", gpkg, "--measures", measures, "--closed-loop", led,
                "-o", tmp_path / "gated")
    assert plain.exit_code == 0 and gated.exit_code == 0, gated.output
    assert "closed-loop ledger: none given" in plain.stdout
    # D: A (10) and C (30) have fallow; A's loop never started -> D = 30 of 285 亩
    assert ("闭环 closed loop (designated+inspected): D counts 30.0 亩; 10.0 亩 with a "
            "strict-control measure but a loop below the minimum stage do not count") in gated.stdout
    a = json.loads((tmp_path / "plain" / "rate.json").read_text("utf-8"))
    b = json.loads((tmp_path / "gated" / "rate.json").read_text("utf-8"))
    county = {r["level"]: r for r in b["rows"]}["county"]
    assert county["numerator_mu"] == 30.0 and county["denominator_mu"] == 285.0
    assert {r["level"]: r for r in a["rows"]}["county"]["numerator_mu"] == 40.0
    assert a["closed_loop"] is None
    assert b["closed_loop"]["min_stages"] == ["designated", "inspected"]
    assert b["closed_loop"]["loop_incomplete_mu"] == 10.0
    stricter = cli("rate", gpkg, "--measures", measures, "--closed-loop", led,
                   "--loop-min-stages", "harvest_checked", "-o", tmp_path / "strict")
    assert "D counts 0.0 亩; 40.0 亩" in stricter.stdout
    plan = pd.read_csv(tmp_path / "gated" / "gap_plan.csv", encoding="utf-8-sig", dtype=str)
    first = plan.loc[plan["parcel_id"] == "A"].iloc[0]
    assert "complete the closed loop" in first["reason"]


def test_rate_refuses_a_ledger_of_another_year(cli, tmp_path):
    gpkg = _run(tmp_path)
    led, measures, _ = _files(tmp_path, "C,告知,2022-03-01,通过,张三,,,\n")
    res = cli("rate", gpkg, "--measures", measures, "--closed-loop", led, "-o", tmp_path / "o")
    assert res.exit_code == 2
    assert "the closed-loop ledger is of 2022, the accounting year is 2023" in res.stderr
