"""The closed loop in ``farmland report`` (issue 18): two sheets and an HTML section from
the control_townships.csv and control_contradictions.csv of ``farmland control``.

Hand-built tables: 清水镇 20 亩 of class 3 (closed 12.5, none 7.5), 黄塘镇 10 亩 (inspected
4, closed 6); county 30 亩, closed 18.5 (61.7 %), at the minimum stage 22.5 (75.0 %)."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from conftest import make_parcels
from PIL import Image

from farmland.classify.summary import class_area_table
from farmland.report.control_sheets import add_control_sheets, control_section
from farmland.report.excel import write_excel_report

TOWNSHIPS_CSV = """township,n_class3,class3_mu,none_mu,notified_mu,inspected_mu,harvest_checked_mu,closed_mu,meets_min_mu,n_contradictions,coverage_min,coverage_closed,target,unclosed_mu
清水镇,3,20.0,7.5,0.0,0.0,0.0,12.5,12.5,2,0.625,0.625,1.0,7.5
黄塘镇,2,10.0,0.0,0.0,4.0,0.0,6.0,10.0,1,1.0,0.6,1.0,4.0
全县 County,5,30.0,7.5,0.0,4.0,0.0,18.5,22.5,3,0.75,0.6166666666666667,1.0,11.5
"""
CONTRADICTIONS_CSV = """parcel_id,township,village,kind,kind_zh,date,detail
0042,清水镇,下寨村,forbidden_planted,巡查发现种植管控农产品,2023-06-10,2023-06-10 巡查发现种植 稻谷
P7,清水镇,下寨村,closed_but_exceeding,已闭环但农产品超标,,=HYPERLINK("x") NP0096 (rice)
P9,黄塘镇,安洞村,forbidden_planted,巡查发现种植管控农产品,2023-07-01,2023-07-01 巡查发现种植 稻谷
"""


@pytest.fixture
def tables(tmp_path):
    (tmp_path / "control_townships.csv").write_text(TOWNSHIPS_CSV, encoding="utf-8-sig")
    (tmp_path / "control_contradictions.csv").write_text(CONTRADICTIONS_CSV,
                                                         encoding="utf-8-sig")
    towns = pd.read_csv(tmp_path / "control_townships.csv", encoding="utf-8-sig")
    contra = pd.read_csv(tmp_path / "control_contradictions.csv", encoding="utf-8-sig",
                         dtype={"parcel_id": str})
    return towns, contra


@pytest.fixture
def workbook(tmp_path):
    parcels = make_parcels(n=2, final_class=[1, 3])
    path = tmp_path / "report.xlsx"
    png = tmp_path / "c.png"
    Image.new("RGB", (4, 4), "white").save(png)
    write_excel_report(path, class_table=class_area_table(parcels), charts={"c": png})
    return path


def test_sheets_hold_the_township_table_and_the_contradictions(workbook, tables):
    added = add_control_sheets(workbook, *tables)
    assert added == ["严格管控闭环 Closed loop", "闭环矛盾 Loop contradictions"]
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == ["类别面积 Class area", "严格管控闭环 Closed loop",
                             "闭环矛盾 Loop contradictions", "图表 Charts"]
    assert len(wb["图表 Charts"]._images) == 1  # the chart survives the second save
    ws = wb["严格管控闭环 Closed loop"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:4] == ("乡镇", "严格管控类图斑数", "严格管控类面积（亩）", "未启动（亩）")
    assert rows[1][:4] == ("Township", "Class-3 parcels", "Class-3 area (mu)", "Not started (mu)")
    assert rows[1][-4:] == ("Minimum-stage coverage", "Closed share", "Not closed (mu)",
                            "Contradictions")
    assert rows[2] == ("清水镇", 3, 20.0, 7.5, 0.0, 0.0, 0.0, 12.5, 12.5, 0.625, 0.625, 7.5, 2)
    assert rows[4][:3] == ("全县 County", 5, 30.0)
    assert rows[4][7:12] == (18.5, 22.5, 0.75, pytest.approx(0.6166667), 11.5)
    assert ws["C3"].number_format == "#,##0.0" and ws["J3"].number_format == "0.0%"
    assert ws["A5"].font.bold and not ws["A4"].font.bold and ws.freeze_panes == "A3"
    c = wb["闭环矛盾 Loop contradictions"]
    assert [cell.value for cell in c[3]][:4] == [
        "0042", "清水镇", "下寨村", "巡查发现种植管控农产品 controlled product found planted"]
    assert c["E3"].value == "2023-06-10" and c["E4"].value is None
    assert c["F4"].value.startswith("=HYPERLINK") and c["F4"].data_type == "s"  # no formula
    assert c.max_row == 5


def test_english_sheets_have_one_header_row(tmp_path, tables):
    path = tmp_path / "en.xlsx"
    write_excel_report(path, class_table=class_area_table(make_parcels(n=1, final_class=[3])),
                       lang="en")
    assert add_control_sheets(path, tables[0], None, lang="en") == ["Closed loop"]
    ws = openpyxl.load_workbook(path)["Closed loop"]
    assert ws["A1"].value == "Township" and ws["A2"].value == "清水镇"
    assert add_control_sheets(path, None, None) == []


def test_html_section_states_the_county_coverage_and_kinds(tables):
    text = control_section(*tables)
    assert ("全县严格管控类耕地 30.0 亩（5 个图斑）：已闭环 18.5 亩（61.7 %），达到最低环节 22.5 亩"
            "（75.0 %，计入安全利用率），未闭环 11.5 亩；目标 100 %。") in text
    assert '<td class="num">18.5</td><td class="num">61.7 %</td>' in text
    assert ("<td>巡查发现种植管控农产品 controlled product found planted</td>"
            '<td class="num">2</td>') in text
    assert '已闭环但农产品超标 loop closed but a crop sample exceeds</td><td class="num">1<' in text
    english = control_section(*tables, lang="en")
    assert "County class-3 farmland 30.0 mu (5 parcels): 18.5 mu closed (61.7 %)" in english
    assert "巡查" not in english
    evil = tables[1].assign(kind="<img src=x>")
    assert "<img" not in control_section(tables[0], evil) and "&lt;img src=x&gt;" in \
        control_section(tables[0], evil)
    assert control_section(None, tables[1]) == ""


def test_cli_report_adds_the_closed_loop(cli, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    make_parcels(n=3, final_class=[1, 2, 3], township=["清水镇", "清水镇", "黄塘镇"]).to_file(
        folder / "classification.gpkg", layer="parcels")
    (folder / "control_townships.csv").write_text(TOWNSHIPS_CSV, encoding="utf-8-sig")
    (folder / "control_contradictions.csv").write_text(CONTRADICTIONS_CSV, encoding="utf-8-sig")
    out = tmp_path / "report"
    result = cli("report", folder, "-o", out)
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames[-3:] == ["严格管控闭环 Closed loop", "闭环矛盾 Loop contradictions",
                                  "图表 Charts"]
    assert wb["闭环矛盾 Loop contradictions"]["A3"].value == "0042"  # ids stay text
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>严格管控类耕地闭环 Strict-control closed loop</h2>" in page
    assert "已闭环 18.5 亩（61.7 %）" in page
