"""Messages a new analyst meets on their own data say the right thing (issue 16.9)."""

from __future__ import annotations

import logging

import openpyxl
import pandas as pd

import farmland as fl


def test_a_ledger_title_row_is_skipped_and_named_as_a_title(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["2023年示范县受污染耕地安全利用措施台账", None, None, None])
    ws.merge_cells("A1:D1")
    ws.append(["图斑编号", "措施类型", "措施类别", "年份"])
    ws.append(["450299101000000001", "VIP", "安全利用", 2023])
    ws.append(["450299101000000002", "休耕", "严格管控", 2023])
    wb.save(tmp_path / "ledger.xlsx")
    ledger = fl.read_measures(tmp_path / "ledger.xlsx")
    assert ledger["parcel_id"].tolist() == ["450299101000000001", "450299101000000002"]
    assert ledger["measure_class"].tolist() == ["safe_use", "strict_control"]
    assert "row 1 read as a title ('2023年示范县受污染耕地安全利用措施台账') and skipped" in caplog.text
    assert "second header row" not in caplog.text


def test_crop_nd_warning_speaks_of_crop_limits_not_soil_screening(caplog):
    caplog.set_level(logging.WARNING)
    crops = pd.DataFrame({"样品编号": ["C1", "C2"], "X": [621_000.0, 621_100.0],
                          "Y": [2_719_000.0, 2_719_000.0], "作物": ["水稻", "水稻"],
                          "镉": ["ND", "0.1"], "铅": ["0.1", "0.1"], "汞": ["0.01", "0.01"],
                          "砷": ["0.1", "0.1"], "铬": ["0.1", "0.1"], "年份": [2023, 2023]})
    fl.read_crop_samples(crops, crs="EPSG:4545")
    assert "GB 2762 grade leaves that element out" in caplog.text
    assert "screening value" not in caplog.text
