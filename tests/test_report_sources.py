"""Where the contamination comes from, in ``farmland report`` (issue 17): the overview sheet,
one sheet per large cluster, the factor profiles and the HTML section.

The clusters are those of test_map_causes.py (CL001 30 亩: 15 class 2 + 15 class 3, Cd and Pb
dominant, E01 first at 0.62; CL002–CL004 15 亩 each). Candidates of CL001, by hand: E01
0.62, E02 0.21, E03 0.05, geogenic 0.0; CL002: geogenic 0.45. With four clusters, all are
among the 20 largest: four detail sheets.
"""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from conftest import make_parcels
from test_map_causes import clusters, confirm, layers

from farmland.classify.summary import class_area_table
from farmland.io.write import write_gpkg_layers
from farmland.report.excel import write_excel_report
from farmland.report.source_sheets import (
    MAX_SHEETS,
    add_source_sheets,
    cluster_sheet_name,
    detail_clusters,
    source_section,
)
from farmland.runs.source_outputs import SourceTables, read_cause_tables
from farmland.sources.candidates import CANDIDATE_COLUMNS

FORMULA = '=HYPERLINK("http://x","y")'


def candidates(evidence: str = "距离 350 m, 方位 bearing 200°; 近场 near field 42 %"
               ) -> pd.DataFrame:
    rows = [
        {"cluster_id": "CL001", "rank": 1, "candidate_id": "E01", "candidate_type": "enterprise",
         "name": "鑫源冶炼厂", "industry": "冶炼", "metals": "cd,pb", "score": 0.62,
         "distance_m": 350.0, "bearing_deg": 200.4, "near_field_share": 0.42,
         "downwind_share": 0.3, "downwind_ratio": 1.8, "downstream": False,
         "network_distance_m": None, "river": None, "along_share": 0.0,
         "signature_cosine": 0.94, "signature_coverage": 0.92, "evidence": evidence},
        {"cluster_id": "CL001", "rank": 2, "candidate_id": "E02", "candidate_type": "enterprise",
         "name": "宏力蓄电池厂", "industry": "蓄电池", "metals": "pb,cd", "score": 0.21,
         "distance_m": 1200.0, "downstream": True, "network_distance_m": 1500.0,
         "river": "清水河", "along_share": 0.3, "evidence": FORMULA},
        {"cluster_id": "CL001", "rank": 4, "candidate_id": "geogenic",
         "candidate_type": "geogenic", "name": "地质高背景（岩溶） geogenic", "metals": "cd",
         "score": 0.0, "karst_share": 0.0, "high_ph_share": 0.25, "co_enrichment": 3.5,
         "evidence": "岩溶 karst 0 %"},
        {"cluster_id": "CL001", "rank": 3, "candidate_id": "E03", "candidate_type": "enterprise",
         "name": "华达电镀厂", "score": 0.05, "evidence": "远 far"},
        {"cluster_id": "CL002", "rank": 1, "candidate_id": "geogenic",
         "candidate_type": "geogenic", "name": "地质高背景（岩溶） geogenic", "score": 0.45,
         "karst_share": 0.8, "evidence": "岩溶 karst 80 %"},
    ]
    return pd.DataFrame(rows).reindex(columns=CANDIDATE_COLUMNS)


def tables(**kw) -> SourceTables:
    base = {"clusters": pd.DataFrame(clusters().drop(columns="geometry")),
            "candidates": candidates(), "confirm": pd.DataFrame(confirm().drop(columns="geometry")),
            "factors": None, "origin": None}
    return SourceTables(**{**base, **kw})


@pytest.fixture
def workbook(tmp_path):
    path = tmp_path / "report.xlsx"
    write_excel_report(path, class_table=class_area_table(make_parcels(n=2, final_class=[1, 3])))
    return path


def _rows(ws) -> list[tuple]:
    return [tuple(v for v in row if v is not None) for row in ws.iter_rows(values_only=True)]


# Which clusters get a sheet ----------------------------------------------------------
def _areas(areas) -> pd.DataFrame:
    return pd.DataFrame({"cluster_id": [f"CL{i + 1:03d}" for i in range(len(areas))],
                         "area_mu": areas})


def test_a_sheet_for_clusters_of_50_mu_or_the_20_largest_at_most_30():
    assert detail_clusters(_areas([60.0] * 25 + [10.0] * 10)) == [f"CL{i:03d}"
                                                                  for i in range(1, 26)]
    small = detail_clusters(_areas([10.0] * 30 + [80.0, 50.0, 49.9]))
    assert small[:3] == ["CL031", "CL032", "CL033"] and len(small) == 20
    assert small[3:] == [f"CL{i:03d}" for i in range(1, 18)]  # ties: by id
    many = detail_clusters(_areas([float(a) for a in range(51, 91)]))
    assert len(many) == MAX_SHEETS and many[0] == "CL040" and many[-1] == "CL011"


def test_sheet_names_are_valid_for_excel_and_unique():
    assert cluster_sheet_name("CL001", "东岩乡", set()) == "CL001 东岩乡"
    assert cluster_sheet_name("CL002", "a/b:c*?[x]\\", set()) == "CL002 a_b_c___x__"
    long = cluster_sheet_name("CL003", "很长的乡镇名称" * 6, set())
    assert len(long) == 31 and long.startswith("CL003 很长的")
    assert cluster_sheet_name("CL004", "'东岩乡'", set()) == "CL004 '东岩乡"
    assert cluster_sheet_name("'CL005'", None, set()) == "CL005"
    assert cluster_sheet_name("CL006", "东岩乡", {"cl006 东岩乡"}) == "CL006"
    assert cluster_sheet_name("CL006", "东岩乡", {"CL006 东岩乡", "CL006"}) == "CL006 (2)"


# The sheets --------------------------------------------------------------------------
def test_overview_and_cluster_sheet_by_hand(workbook):
    added = add_source_sheets(workbook, tables(
        factors=pd.DataFrame({"factor": ["F1"], "cd": [0.7]})))
    assert added == ["污染成因 Source clusters", "源解析因子 Factor profiles", "CL001 清水镇",
                     "CL002 黄塘镇", "CL003 黄塘镇", "CL004 黄塘镇"]
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == ["类别面积 Class area", *added]
    ws = wb["污染成因 Source clusters"]
    rows = _rows(ws)
    assert rows[0] == (("污染成因排查：4 个污染聚集区（安全利用类和严格管控类连片耕地），合计 75.0 亩，"
                        "其中严格管控类 15.0 亩。"),)
    assert rows[2] == (("首位候选类型：企业近场 30.0 亩（1 个），灌溉水 15.0 亩（1 个），地质高背景 "
                        "15.0 亩（1 个），未明 15.0 亩（1 个）。"),)
    assert "共 4 张，见末列；其余 0 个聚集区无明细表" in rows[4][0]
    head = [c.value for c in ws[10]]
    assert head[:4] == ["聚集区", "乡镇", "涉及其他乡镇", "面积（亩）"]
    assert head[-5:] == ["成因类型", "得分", "领先幅度", "依据", "明细表"]
    assert [c.value for c in ws[11]][-2:] == ["Evidence", "Detail sheet"]
    cl1 = [c.value for c in ws[12]]
    assert cl1 == ["CL001", "清水镇", "黄塘镇", 30.0, 15.0, 15.0, 2, 4, "Cd 镉, Pb 铅", 6.15, 1.84,
                   3.2, "E01", "鑫源冶炼厂", "企业近场 enterprise near field", 0.62, 0.41,
                   "距离 350 m, 方位 bearing 200°; 近场 near field 42 %", "CL001 清水镇"]
    assert [c.value for c in ws[14]][14] == "未明 unexplained"  # CL003: E03 at 0.12
    assert ws["S12"].hyperlink.location == "'CL001 清水镇'!A1"
    assert ws["D12"].number_format == "#,##0.0" and ws["P12"].number_format == "0.000"
    assert ws.freeze_panes == "B12"

    sheet = _rows(wb["CL001 清水镇"])
    assert sheet[0] == ("CL001 清水镇 污染聚集区",)
    figures = {r[0]: r[1] for r in sheet if len(r) == 2}
    assert figures["面积（亩） Area (mu)"] == 30.0
    assert figures["安全利用类（亩） Class 2 (mu)"] == 15.0
    assert figures["严格管控类（亩） Class 3 (mu)"] == 15.0
    assert figures["土壤点位数 Soil samples"] == 4 and figures["pH 中位数 Median pH"] == 6.15
    assert figures["首位候选 Top candidate"] == "E01" and figures["得分 Score"] == 0.62
    assert figures["成因类型 Cause"] == "企业近场 enterprise near field"
    i = sheet.index(("元素", "中位含量（mg/kg）", "富集系数", "Pᵢ 中位数", "Pᵢ P90", "主要超标"))
    assert sheet[i + 2] == ("Cd 镉", 0.62, 3.1, 1.84, 3.2, "是 yes")
    assert sheet[i + 3] == ("Pb 铅", 88.0, 2.9, 1.1, 1.4, "是 yes")
    j = sheet.index(("候选来源（按得分排序）",))
    assert sheet[j + 2][:5] == ("排序", "候选编号", "类型", "名称", "行业")
    assert sheet[j + 3][-2:] == ("Co-enrichment (×)", "Evidence")
    ranks = [r[:2] for r in sheet[j + 4:j + 8]]
    assert ranks == [(1, "E01"), (2, "E02"), (3, "E03"), (4, "geogenic")]
    assert sheet[j + 4] == (1, "E01", "企业近场 enterprise near field", "鑫源冶炼厂", "冶炼", "cd,pb",
                            0.62, 350.0, 200.4, 0.42, 0.3, 1.8, "否 no", 0.0, 0.94, 0.92,
                            "距离 350 m, 方位 bearing 200°; 近场 near field 42 %")
    assert sheet[j + 5][8:11] == ("是 yes", 1500.0, "清水河")  # (empty cells left out)
    k = sheet.index(("核实采样点",))
    assert sheet[k + 4][:3] == ("C001", "E01", "表层土壤样带 topsoil transect")
    ws1 = wb["CL001 清水镇"]
    cell = next(c for row in ws1.iter_rows() for c in row if c.value == FORMULA)
    assert cell.data_type == "s"  # evidence text never becomes a formula
    empty = _rows(wb["CL004 黄塘镇"])
    assert (("（无候选：未找到 candidates.csv 或本聚集区无候选） (no candidates: no candidates.csv, "
             "or none for this cluster)"),) in empty
    # factors.csv as written: its column names over an empty English row
    assert _rows(wb["源解析因子 Factor profiles"])[3:] == [("factor", "cd"), (), ("F1", 0.7)]


def test_english_sheets_and_no_outputs(tmp_path, workbook):
    assert add_source_sheets(workbook, None) == []
    path = tmp_path / "en.xlsx"
    write_excel_report(path, class_table=class_area_table(make_parcels(n=1, final_class=[3])),
                       lang="en")
    added = add_source_sheets(path, tables(), lang="en")
    assert added[0] == "Source clusters"
    ws = openpyxl.load_workbook(path)["Source clusters"]
    assert ws["A1"].value.startswith("Source investigation: 4 contaminated-land cluster(s)")
    header = [c.value for c in ws[6]]
    assert header[:2] == ["Cluster", "Township"] and ws["A7"].value == "CL001"
    assert ws["O7"].value == "enterprise near field"


def test_html_section_gives_the_area_by_cause_and_stays_text():
    evil = "<script>alert(1)</script>"
    text = source_section(tables(clusters=pd.DataFrame(
        clusters(evidence=evil).drop(columns="geometry"))))
    assert "<h2>污染成因排查 Where the contamination comes from</h2>" in text
    assert ('企业近场 enterprise near field</td><td class="num">1</td><td class="num">30.0</td>'
            '<td class="num">40.0 %</td>') in text
    assert "<th>首位候选 Top candidate</th>" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Where the contamination comes from" in source_section(tables(), "en")
    assert "污染" not in source_section(tables(), "en")
    assert source_section(None) == ""


# Reading the outputs and farmland report ----------------------------------------------
def test_tables_from_the_csv_files_keep_ids_as_text(tmp_path):
    pd.DataFrame(clusters().drop(columns="geometry")).assign(cluster_id=["0042", "CL002",
                                                                         "CL003", "CL004"]
                                                             ).to_csv(tmp_path / "clusters.csv",
                                                                      index=False)
    candidates().to_csv(tmp_path / "candidates.csv", index=False)
    got = read_cause_tables(tmp_path)
    assert got.clusters["cluster_id"].tolist()[0] == "0042" and got.confirm is None
    assert got.candidates["downstream"].tolist()[:2] == [False, True]
    assert read_cause_tables(tmp_path / "clusters.csv").origin.name == "clusters.csv"
    (tmp_path / "nothing").mkdir()
    assert read_cause_tables(tmp_path / "nothing", required=False) is None


def _one_line_error(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [x for x in result.output.strip().splitlines() if not x.startswith("INFO ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    make_parcels(n=3, final_class=[1, 2, 3], township=["清水镇", "清水镇", "黄塘镇"]).to_file(
        folder / "classification.gpkg", layer="parcels")
    return folder


def test_cli_report_adds_the_source_sheets(cli, run, tmp_path):
    out = tmp_path / "report"
    assert cli("report", run, "-o", out).exit_code == 0
    assert "污染成因 Source clusters" not in openpyxl.load_workbook(out / "report.xlsx").sheetnames
    write_gpkg_layers(run / "sources.gpkg", layers())
    candidates().to_csv(run / "candidates.csv", index=False, encoding="utf-8-sig")
    result = cli("report", run, "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames[-6:] == ["污染成因 Source clusters", "CL001 清水镇", "CL002 黄塘镇",
                                  "CL003 黄塘镇", "CL004 黄塘镇", "图表 Charts"]
    assert ("C001", "E01", "表层土壤样带 topsoil transect") in [
        r[:3] for r in _rows(wb["CL001 清水镇"])]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>污染成因排查 Where the contamination comes from</h2>" in page


def test_cli_report_refuses_a_causes_file_that_is_not_of_farmland_sources(cli, run, tmp_path):
    out = tmp_path / "report"
    line = _one_line_error(cli("report", run, "--causes", run / "classification.gpkg", "-o", out))
    assert "classification.gpkg" in line and "no layer 'clusters'" in line
    bad = tmp_path / "clusters.csv"
    bad.write_text("cluster_id,township\nCL001,清水镇\n", encoding="utf-8")
    line = _one_line_error(cli("report", run, "--causes", bad, "-o", out))
    assert "clusters.csv" in line and "no 'area_mu' column" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_error(cli("report", run, "--causes", empty, "-o", out))
    assert "no clusters of 'farmland sources'" in line
    assert not (out / "report.xlsx").exists()
