"""Excel and HTML reports (farmland.report.excel, farmland.report.html); `farmland report` is
in test_cli_report.py."""

from __future__ import annotations

import re
import zipfile

import openpyxl
import pandas as pd
import pytest

from farmland.classify.summary import class_area_table
from farmland.errors import InputError, OutputExistsError
from farmland.rate.accounting import finish_table
from farmland.report.excel import rate_statement, text_width, write_excel_report
from farmland.report.html import write_html_report

INJECT_ID = '=HYPERLINK("http://x")'
INJECT_TOWN = "@SUM(A1)"
DDE_REASON = "+cmd|' /C calc'!A0"
SHEETS_ZH = ["类别面积 Class area", "安全利用率 Rate", "缺口地块 Gap parcels", "严格管控区 Zones",
             "加密布点 Sampling plan", "农产品超标 Crop exceedances", "质量检查 QA flags",
             "图表 Charts"]
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81"
       b"\x84\x00\x00\x00\x00IEND\xaeB`\x82")


# -- fixtures: tables computed by hand -----------------------------------------------------------
@pytest.fixture
def parcels() -> pd.DataFrame:
    """清水镇: class 1 10 亩, class 2 5 亩; "@SUM(A1)": class 3 3 亩, unclassified 2 亩."""
    return pd.DataFrame({
        "parcel_id": ["P1", "P2", "P3", "P4"],
        "township": ["清水镇", "清水镇", INJECT_TOWN, INJECT_TOWN],
        "final_class": pd.array([1, 2, 3, None], dtype="Int8"),
        "area_mu": [10.0, 5.0, 3.0, 2.0],
    })


@pytest.fixture
def class_table(parcels) -> pd.DataFrame:
    return class_area_table(parcels)


def rate_parts(achieved_a: float = 10.0) -> pd.DataFrame:
    """County = 清水镇 + 华侨管理区 + 城关镇 (no class-2/3 land, rate undefined).

    清水镇: A2 20, A3 10, achieved ``achieved_a``, controlled 10;
    华侨管理区: A2 10 achieved 10.  Default county: (20 + 10) / 40 = 75 %,
    gap = 0.91 × 40 − 30 = 6.4 亩; 清水镇 20/30, gap 0.91 × 30 − 20 = 7.3 亩.
    """
    towns = pd.DataFrame({
        "level": "township", "name": ["清水镇", "华侨管理区", "城关镇"],
        "n_parcels_2": [2, 1, 0], "n_parcels_3": [1, 0, 0],
        "area2_mu": [20.0, 10.0, 0.0], "area3_mu": [10.0, 0.0, 0.0],
        "achieved2_mu": [achieved_a, 10.0, 0.0], "unverified2_mu": 0.0, "exceed2_mu": 0.0,
        "controlled3_mu": [10.0, 0.0, 0.0], "unclassified_mu": 0.0})
    county = towns.drop(columns=["level", "name"]).sum().to_frame().T
    county.insert(0, "name", "全县")
    county.insert(0, "level", "county")
    return pd.concat([county, towns], ignore_index=True)


@pytest.fixture
def rate_table() -> pd.DataFrame:
    return finish_table(rate_parts(), 0.91)


@pytest.fixture
def tables(class_table, rate_table) -> dict[str, pd.DataFrame]:
    gap = pd.DataFrame({
        "scope": ["清水镇"], "township": ["清水镇"], "parcel_id": [INJECT_ID],
        "final_class": pd.array([2], dtype="Int8"), "area_mu": [8.0],
        "proposed_measure_class": ["safe_use"], "cumulative_mu": [8.0],
        "rate_after": [28 / 30], "reaches_target": [True]})
    zones = pd.DataFrame({"zone_id": ["SC001"], "township": [INJECT_TOWN], "area_mu": [3.0],
                          "n_parcels": [1], "n_samples": [1], "driving_elements": ["cd"],
                          "parcel_ids": ["P3"]})
    plan = pd.DataFrame({"point_id": ["N001"], "lon": [108.123456], "lat": [25.5], "x": [500100.0],
                         "y": [2820000.0], "township": ["清水镇"], "parcel_id": ["-1"],
                         "mode": ["coverage"], "reason": [DDE_REASON], "priority": [1],
                         "expected_benefit": [4.5]})
    crops = pd.DataFrame({"sample_id": ["C1"], "crop": ["rice"], "cd": [0.35], "pb": [0.1],
                          "hg": [0.01], "as": [0.2], "cr": [0.3], "crop_grade": [2],
                          "parcel_id": ["P2"], "year": [2024]})
    qa = pd.DataFrame({"parcel_id": ["P1"], "township": ["清水镇"],
                       "final_class": pd.array([1], dtype="Int8"), "rule": ["points:majority"],
                       "qa_flags": ["class1_with_class2_point"]})
    return {"class_table": class_table, "rate_table": rate_table, "gap_plan": gap, "zones": zones,
            "plan": plan, "crop_exceedances": crops, "qa_flags": qa}


@pytest.fixture
def chart_files(tmp_path):
    paths = []
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(PNG)
        paths.append(tmp_path / name)
    return paths


def header_map(ws, row: int) -> dict[str, int]:
    return {c.value: c.column for c in ws[row] if c.value is not None}


# -- Excel ----------------------------------------------------------------------------------------
def test_workbook_sheets_totals_and_layout(tmp_path, tables, chart_files):
    path = write_excel_report(tmp_path / "r.xlsx", **tables, charts=chart_files)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == SHEETS_ZH
    ws = wb["类别面积 Class area"]
    assert [ws.cell(1, j).value for j in (1, 3, 7)] == ["乡镇", "优先保护类（亩）", "合计（亩）"]
    assert [ws.cell(2, j).value for j in (1, 3, 7)] == ["Township", "Priority protection (mu)",
                                                        "Total (mu)"]
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A2:P5"
    cols = header_map(ws, 2)
    total_row = 5  # 2 header rows, 2 townships, county total
    totals = {k: ws.cell(total_row, cols[h]).value for k, h in [
        ("class1", "Priority protection (mu)"), ("class2", "Safe utilisation (mu)"),
        ("class3", "Strict control (mu)"), ("unclassified", "Unclassified (mu)"),
        ("total", "Total (mu)")]}
    assert totals == {"class1": 10.0, "class2": 5.0, "class3": 3.0, "unclassified": 2.0,
                      "total": 20.0}
    assert totals["total"] == tables["class_table"]["total_mu"].iloc[-1]
    assert ws.cell(total_row, 1).font.bold
    assert ws.cell(3, cols["Total (mu)"]).number_format == "#,##0.0"
    assert ws.cell(3, cols["Total (hm²)"]).number_format == "#,##0.00"
    share = ws.cell(total_row, cols["Priority protection share"])
    assert (share.value, share.number_format) == (0.5, "0.0%")  # 10 of 20 亩
    assert len(wb["图表 Charts"]._images) == 2


def test_rate_sheet_states_target_and_gap(tmp_path, tables):
    wb = openpyxl.load_workbook(write_excel_report(tmp_path / "r.xlsx", **tables))
    ws = wb["安全利用率 Rate"]
    assert ws["A1"].value == ("全县受污染耕地安全利用率 75.0 %，目标 91 %：未达标，"
                              "缺口 6.4 亩（0.43 公顷）。")
    assert ws["A2"].value == ("County safe-utilisation rate 75.0 % against a target of 91 %: "
                              "target NOT met, short by 6.4 mu (0.43 hm²).")
    assert ws["A3"].value == "未达标乡镇 1 个：清水镇；1 个乡镇无受污染耕地。"
    assert ws["A5"].value == ("补齐方案（见“缺口地块”表）：1 个安全利用类图斑（8.0 亩），合计计入 8.0 亩，"
                              "可补足缺口。")
    head = 8  # 6 statement lines, a blank row, then the Chinese header row
    assert ws.cell(head, 1).value == "级别"
    assert ws.freeze_panes == f"A{head + 2}"
    cols = header_map(ws, head + 1)
    rate = ws.cell(head + 2, cols["Rate"])
    assert (rate.value, rate.number_format) == (0.75, "0.0%")
    assert ws.cell(head + 2, cols["Gap (mu)"]).value == pytest.approx(6.4)
    assert ws.cell(head + 2, cols["Target met"]).value == "未达标 not met"
    assert ws.cell(head + 2, 1).font.bold  # county row
    undefined = head + 5  # 城关镇: no class-2/3 land
    assert ws.cell(undefined, cols["Rate"]).value is None
    assert ws.cell(undefined, cols["Target met"]).value == "无污染耕地 n/a"


def test_rate_statement_met_and_undefined():
    met = finish_table(rate_parts(achieved_a=20.0).iloc[[0, 1]], 0.75)  # 40/40 and 30/30
    assert rate_statement(met, "en")[0] == (
        "County safe-utilisation rate 100.0 % against a target of 75 %: target met.")
    assert rate_statement(met, "zh")[2] == "各乡镇均已达标。"
    none = finish_table(rate_parts().iloc[[3]].assign(level="county"), 0.91)
    assert rate_statement(none, "zh")[0] == "全县无安全利用类和严格管控类耕地，安全利用率不适用。"


def test_formula_injection_is_neutralised(tmp_path, tables):
    path = write_excel_report(tmp_path / "r.xlsx", **tables)
    wb = openpyxl.load_workbook(path)
    cells = [wb["缺口地块 Gap parcels"]["C3"], wb["类别面积 Class area"]["A3"],
             wb["严格管控区 Zones"]["B3"], wb["加密布点 Sampling plan"]["G3"],
             wb["加密布点 Sampling plan"]["I3"]]
    assert [c.value for c in cells] == [INJECT_ID, INJECT_TOWN, INJECT_TOWN, "-1", DDE_REASON]
    for cell in cells:
        assert cell.data_type == "s"
        assert cell.quotePrefix
    with zipfile.ZipFile(path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and not any(re.search(rb"<f[ >]", z.read(n)) for n in sheets)


def test_english_headers_and_sheet_names(tmp_path, tables):
    wb = openpyxl.load_workbook(write_excel_report(tmp_path / "r.xlsx", **tables, lang="en"))
    assert wb.sheetnames[:3] == ["Class area", "Rate", "Gap parcels"]
    ws = wb["Class area"]
    assert [c.value for c in ws[1]][:3] == ["Township", "Parcels", "Priority protection (mu)"]
    assert ws["A2"].value == INJECT_TOWN  # data starts right below the single header row
    assert ws.freeze_panes == "A2"
    assert wb["Rate"]["A1"].value.startswith("County safe-utilisation rate 75.0 %")
    assert wb["Gap parcels"]["E2"].value == "Safe utilisation"  # class label, English only
    assert wb["Gap parcels"]["G2"].value == "safe use"


def test_columns_fit_cjk_width(tmp_path, tables):
    assert text_width("华侨管理区 ab") == 13
    ct = tables["class_table"].copy()
    ct.loc[0, "township"] = "华侨管理区华侨管理区"  # 20 display columns
    ws = openpyxl.load_workbook(write_excel_report(tmp_path / "r.xlsx", class_table=ct)).active
    assert ws.column_dimensions["A"].width == 22


def test_overwrite_is_refused_and_write_is_atomic(tmp_path, class_table):
    path = tmp_path / "r.xlsx"
    write_excel_report(path, class_table=class_table)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_excel_report(path, class_table=class_table)
    write_excel_report(path, class_table=class_table, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.xlsx"]


def test_bad_inputs(tmp_path, class_table):
    with pytest.raises(InputError, match="unknown report language"):
        write_excel_report(tmp_path / "r.xlsx", class_table=class_table, lang="fr")
    with pytest.raises(InputError, match="lacks column.*class1_mu"):
        write_excel_report(tmp_path / "r.xlsx", class_table=class_table.drop(columns="class1_mu"))
    with pytest.raises(InputError, match="chart image not found"):
        write_excel_report(tmp_path / "r.xlsx", class_table=class_table, charts=["nope.png"])
    assert not (tmp_path / "r.xlsx").exists()


# -- HTML -----------------------------------------------------------------------------------------
def test_html_is_self_contained_and_escaped(tmp_path, class_table, rate_table, chart_files):
    ct = class_table.copy()
    ct.loc[0, "township"] = "<script>alert(1)</script>"
    path = write_html_report(tmp_path / "r.html", title="报告 <b>&", class_table=ct,
                             rate_table=rate_table, charts=chart_files,
                             notes=['<a href="javascript:x">x</a>'])
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text and "<a " not in text
    assert "&lt;a href=&quot;javascript:x&quot;&gt;x&lt;/a&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>报告 &lt;b&gt;&amp;</title>" in text
    assert text.count("data:image/png;base64,iVBORw0KGgo") == 2
    assert "全县受污染耕地安全利用率 75.0 %，目标 91 %：未达标，缺口 6.4 亩（0.43 公顷）。" in text
    assert 'class="verdict notmet"' in text
    assert "全县耕地 20.0 亩（1.33 公顷）：优先保护类 10.0 亩（50.0 %）" in text
    with pytest.raises(OutputExistsError):
        write_html_report(path, title="x", class_table=class_table)
