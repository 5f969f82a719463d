"""Report labels, contradiction counts, CSV area precision and log paths (defects found by
an exploratory tester, 2026-12). Every expected value is worked by hand."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from openpyxl import load_workbook
from shapely.geometry import Polygon

from farmland.control import check_ledger, closed_loop
from farmland.control.export import write_zone_kml
from farmland.io.control_tables import read_control_ledger
from farmland.io.write import atomic_folder, csv_ready, final_path, significant
from farmland.report.excel import display_value, write_excel_report
from farmland.vocabulary import COUNTY

CLASS_TABLE = pd.DataFrame({
    "township": ["东岩乡", COUNTY], "n_parcels": [2, 2],
    "class1_mu": [0.0, 0.0], "class2_mu": [10.0, 10.0], "class3_mu": [5.0, 5.0],
    "unclassified_mu": [0.0, 0.0], "total_mu": [15.0, 15.0]})


def _rows(ws):
    return [tuple(c.value for c in row) for row in ws.iter_rows()]


# -- 1. report headers and coded values ------------------------------------------------------
def _report(tmp_path, lang="zh"):
    rate = pd.DataFrame({"level": ["county"], "name": [COUNTY], "area2_mu": [10.0],
                         "area3_mu": [5.0], "numerator_mu": [12.0], "denominator_mu": [15.0],
                         "rate": [0.8], "target": [0.91], "met": [False], "gap_mu": [1.65],
                         "loop_incomplete3_mu": [84.9433], "loop_incomplete3_hm2": [5.662887]})
    gap = pd.DataFrame({"scope": ["x"], "township": ["东岩乡"], "parcel_id": ["P1"],
                        "final_class": [3], "area_mu": [1.5], "gain_mu": [1.5],
                        "proposed_measure_class": ["strict_control"],
                        "reason": ["完成闭环管理环节"], "cumulative_mu": [1.5]})
    zones = pd.DataFrame({"zone_id": ["SC001"], "township": ["东岩乡"], "area_mu": [5.0],
                          "driving_elements": ["cd,pb"], "zone_gap_m": [30.0]})
    plan = pd.DataFrame({"point_id": ["N1"], "reason": ["边界图斑"]})
    qa = pd.DataFrame({"parcel_id": ["P1", "P2"], "township": ["东岩乡", "东岩乡"],
                       "final_class": [1, 2], "rule": ["points:majority", "points:majority"],
                       "qa_flags": ["single_point_unit",
                                    "single_point_unit;evidence_not_point_class_3;new_code"]})
    outliers = pd.DataFrame({"sample_id": ["S1"], "element": ["cd"], "value": ["0.062"],
                             "check": ["loo"], "detail": ["d"], "fix": ["f"], "action": ["a"]})
    path = write_excel_report(tmp_path / f"r_{lang}.xlsx", class_table=CLASS_TABLE,
                              rate_table=rate, gap_plan=gap, zones=zones, plan=plan,
                              qa_flags=qa, outliers=outliers, lang=lang)
    return load_workbook(path)


def _column(ws, header_row: int, header: str):
    heads = [c.value for c in ws[header_row]]
    j = heads.index(header) + 1
    return [ws.cell(row=r, column=j) for r in range(header_row + 1, ws.max_row + 1)]


def test_rate_sheet_labels_the_loop_incomplete_area_and_formats_it(tmp_path):
    ws = _report(tmp_path)["安全利用率 Rate"]
    head = next(i for i, r in enumerate(_rows(ws), start=1) if r[0] == "级别")
    assert ws.cell(row=head + 1, column=1).value == "Level"
    mu = _column(ws, head, "管控措施未闭环（亩）")
    hm2 = _column(ws, head, "管控措施未闭环（公顷）")
    assert mu[0].value == "Class-3 loop below the minimum stage (mu)"
    assert mu[1].value == 84.9433 and mu[1].number_format == "#,##0.0"
    assert hm2[1].value == 5.662887 and hm2[1].number_format == "#,##0.00"
    assert not any(isinstance(v, str) and "loop_incomplete" in v
                   for r in _rows(ws) for v in r)


def test_zones_sheet_labels_the_gap_and_the_elements(tmp_path):
    wb = _report(tmp_path)
    ws = wb["严格管控区 Zones"]
    assert _rows(ws)[0] == ("管控区编号", "乡镇", "面积（亩）", "超标元素", "连片间距（米）")
    assert _rows(ws)[1][-1] == "Zone gap (m)"
    assert _rows(ws)[2][3:] == ("Cd 镉, Pb 铅", 30.0)
    assert ws.cell(row=3, column=5).number_format == "#,##0.0"
    en = _report(tmp_path, "en")["Zones"]
    assert _rows(en)[1][3] == "Cd, Pb"


def test_qa_flags_and_suspect_values_are_in_words(tmp_path):
    wb = _report(tmp_path)
    qa = _rows(wb["质量检查 QA flags"])
    assert [r[-1] for r in qa[2:]] == [
        "仅一个点位 one sample only",
        ("仅一个点位 one sample only; 综合证据类别与点位类别（3 类）不同 evidence differs from "
         "the points' class 3; new_code")]                    # an unknown code stays itself
    out = _rows(wb["可疑数值 Suspect values"])
    assert out[2][:4] == ("S1", "Cd 镉", "0.062", "留一交叉验证偏离 leave-one-out outlier")
    assert display_value("qa_flags", "single_point_unit", "en") == "one sample only"


def test_gap_parcels_reason_is_not_a_sampling_point_reason(tmp_path):
    wb = _report(tmp_path)
    gap = _rows(wb["缺口地块 Gap parcels"])
    assert "纳入原因" in gap[0] and "布点原因" not in gap[0]
    assert "布点原因" in _rows(wb["加密布点 Sampling plan"])[0]          # the plan keeps its own


def test_no_sheet_header_is_a_raw_column_name(tmp_path):
    wb = _report(tmp_path)
    for ws in wb.worksheets:
        for row in ws.iter_rows(max_row=2 if ws.title != "安全利用率 Rate" else ws.max_row):
            for c in row:
                assert not (isinstance(c.value, str) and "_" in c.value
                            and c.value.isascii() and " " not in c.value), (ws.title, c.value)


# -- 2. contradictions: the township table adds up to the total ------------------------------
def test_township_table_counts_every_contradiction(tmp_path):
    parcels = pd.DataFrame({
        "parcel_id": ["A", "B", "H", "K"], "township": ["东岩乡", "东岩乡", "东岩乡", "清水镇"],
        "village": ["平头村"] * 4, "final_class": pd.array([3, 3, 2, 1], dtype="Int8"),
        "area_mu": [10.0, 20.0, 5.0, 7.0]})
    csv = tmp_path / "ledger.csv"
    csv.write_text("图斑编号,环节,日期,结果,责任人,种植作物,去向,批次号\n"
                   "A,种植巡查,2023-06-10,不合格,李四,稻谷,,\n"       # forbidden planted on A
                   "H,告知,2023-03-01,通过,张三,,,\n"                 # H is class 2
                   "K,告知,2023-03-01,通过,张三,,,\n"                 # K is class 1, 清水镇
                   "K,划定,2023-03-05,通过,局,,,\n", encoding="utf-8-sig")
    led = check_ledger(read_control_ledger(csv), ["A", "B", "H", "K"], 2023)
    res = closed_loop(parcels, led, year=2023)
    assert res.contradictions["kind"].tolist() == ["forbidden_planted", "not_class3",
                                                   "not_class3"]
    t = res.townships.set_index("township")
    assert list(t.index) == ["东岩乡", "清水镇", COUNTY]
    assert t["n_contradictions"].to_dict() == {"东岩乡": 2, "清水镇": 1, COUNTY: 3}
    assert t["n_not_class3"].to_dict() == {"东岩乡": 1, "清水镇": 1, COUNTY: 2}
    assert t.at[COUNTY, "n_contradictions"] == len(res.contradictions) == res.to_dict()[
        "n_contradictions"]
    # 清水镇 has no class-3 land: a row of zeros, coverage undefined, not 0 %
    assert t.at["清水镇", "n_class3"] == 0 and t.at["清水镇", "class3_mu"] == 0.0
    assert pd.isna(t.at["清水镇", "coverage_min"])
    assert t.at[COUNTY, "class3_mu"] == 30.0 and t.at[COUNTY, "n_class3"] == 2
    # the per-parcel count stays that of the class-3 parcel
    assert res.parcels.set_index("parcel_id")["n_contradictions"].to_dict() == {"A": 1, "B": 0}


def test_township_table_without_contradictions_or_class3():
    parcels = pd.DataFrame({"parcel_id": ["A"], "township": ["东岩乡"], "village": ["村"],
                            "final_class": pd.array([2], dtype="Int8"), "area_mu": [3.0]})
    t = closed_loop(parcels, None, year=2023).townships
    assert t["township"].tolist() == [COUNTY]
    assert (t.iloc[-1]["n_contradictions"], t.iloc[-1]["n_not_class3"]) == (0, 0)


# -- 3. floats written without their summation noise ---------------------------------------
def test_csv_ready_drops_float_noise_not_digits():
    total = 1.1 + 2.2 + 0.0001
    assert repr(total) == "3.3001000000000005"          # the float noise this is about
    frame = pd.DataFrame({"cumulative_mu": [total], "area_hm2": [total / 15],
                          "rate_after": [0.8751809908255253], "n_parcels": [2],
                          "gap_mu": [2651.1910000000003], "none_mu": [np.nan]})
    out = csv_ready(frame)
    text = out.to_csv(index=False)
    # 12 significant digits: the noise goes, no digit a county could measure does
    assert text.splitlines()[1] == "3.3001,0.220006666667,0.875180990826,2,2651.191,"
    assert frame.at[0, "cumulative_mu"] == total        # the table itself keeps its value
    assert csv_ready(out).equals(out)                   # a second pass changes nothing
    assert significant([123456789012345.5, 0.0], digits=12).tolist() == [123456789012000.0, 0.0]
    assert significant([-0.000123456789012345])[0] == -0.000123456789012


# -- 4. log lines name the final file, not the staging folder --------------------------------
def test_report_and_kml_log_the_final_path(tmp_path, caplog):
    assert final_path(tmp_path / ".farmland-1g1oljdp" / "report.xlsx") == tmp_path / "report.xlsx"
    assert final_path(tmp_path / ".farmland-x" / "a.csv") == tmp_path / ".farmland-x" / "a.csv"
    out = tmp_path / "report"
    zones = gpd.GeoDataFrame({"zone_id": ["Z1"], "village": ["村"],
                              "controlled_products": ["rice"], "controlled_zh": ["稻谷"],
                              "allowed_products": [""], "basis": ["b"]},
                             geometry=[Polygon([(620000, 2722000), (620100, 2722000),
                                                (620100, 2722100)])], crs="EPSG:4545")
    with caplog.at_level(logging.INFO), atomic_folder(out) as stage:
        write_excel_report(stage / "report.xlsx", class_table=CLASS_TABLE)
        write_zone_kml(zones, stage / "zones.kml")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("wrote")]
    assert lines == [f"wrote {out / 'report.xlsx'} (类别面积 Class area)",
                     f"wrote 1 strict-control zone(s) to {out / 'zones.kml'}"]
    assert (out / "report.xlsx").is_file() and not any(".farmland-" in x for x in lines)


def test_plan_modes_in_words_and_suspect_values_as_numbers():
    from farmland.maps.display import MODE_LABELS
    from farmland.report.excel import COLUMNS, NUMERIC_KINDS

    assert display_value("mode", "uncertainty", "zh") == "不确定性 uncertainty"
    assert display_value("mode", "coverage", "en") == "coverage"
    assert MODE_LABELS["uncertainty"] == "不确定性 uncertainty"     # the map says the same
    assert COLUMNS["value"][2] in NUMERIC_KINDS                     # 0.062 is a number cell
    assert display_value("value", 0.062, "zh") == 0.062


# -- long text wraps instead of being cut off by the next cell ------------------------------
def test_a_text_wider_than_the_widest_column_wraps(tmp_path):
    from openpyxl import Workbook

    from farmland.report.excel import MAX_WIDTH, WRAP_MAX_CHARS, fit_column, text_width

    ws = Workbook().active
    reason = "完成闭环管理环节（划定、巡查）complete the closed loop (designation, inspection)"
    assert text_width(reason) == 80 > MAX_WIDTH - 2   # 15 wide characters, 50 narrow
    ids = ",".join(f"4502992030000{k:05d}" for k in range(40))  # 759 characters
    assert len(ids) > WRAP_MAX_CHARS
    rows = [("原因 Reason", "next"), (reason, "P1"), ("short", "P2"), (ids, "P3")]
    for r, (a, b) in enumerate(rows, start=1):
        ws.cell(r, 1, a)
        ws.cell(r, 2, b)
    fit_column(ws, 1, max(text_width(a) for a, _ in rows), first_row=2)
    fit_column(ws, 2, 4, first_row=2)
    assert ws.column_dimensions["A"].width == MAX_WIDTH
    assert ws.column_dimensions["B"].width == 6
    wrap = [ws.cell(r, 1).alignment.wrap_text for r in range(1, 5)]
    # the header row is not touched, the reason wraps, a short text and an id list do not
    assert wrap == [None, True, None, None]
    assert ws.cell(2, 1).alignment.vertical == "top"
    assert not any(ws.cell(r, 2).alignment.wrap_text for r in range(1, 5))


def test_the_reports_long_reasons_wrap(tmp_path):
    """The gap plan's reasons (80 wide on the demo) were cut at the 60-wide column by the
    next cell."""
    reason = "完成闭环管理环节（划定、巡查）complete the closed loop (designation, inspection)"
    gap = pd.DataFrame({"scope": ["x", "x"], "township": ["东岩乡", "东岩乡"],
                        "parcel_id": ["P1", "P2"], "final_class": [3, 3],
                        "area_mu": [1.5, 2.0], "gain_mu": [1.5, 2.0],
                        "proposed_measure_class": ["strict_control"] * 2,
                        "reason": [reason, "short"], "cumulative_mu": [1.5, 3.5]})
    path = write_excel_report(tmp_path / "r.xlsx", class_table=CLASS_TABLE, gap_plan=gap)
    ws = load_workbook(path)["缺口地块 Gap parcels"]
    cells = {c.value: c for row in ws.iter_rows() for c in row if c.value in (reason, "short")}
    assert cells[reason].alignment.wrap_text is True
    assert not cells["short"].alignment.wrap_text
