"""A measures ledger as it arrives (issue 14.7): never a measure on the wrong parcel.

- an 18-digit 图斑编号 typed into an Excel number cell has already lost its last digits
  (430321211000002395 is stored as 430321211000002432, another real parcel): refused;
- a row without a parcel id is kept for ``unknown_measures`` with a warning;
- regional measure names (VIP+n …) are one measure, not split at '+';
- a county's own names can be added in the mapping file; unknown names are refused
  with the Chinese names listed.
"""

from __future__ import annotations

import logging

import openpyxl
import pandas as pd
import pytest

import farmland as fl
from farmland.io.fields import split_measures


def _xlsx(path, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_numeric_18_digit_ids_from_excel_are_refused_with_the_fix(tmp_path):
    path = _xlsx(tmp_path / "ledger.xlsx", [["图斑编号", "措施类型", "年份"],
                                            [430321211000002395, "VIP+n", 2023]])
    with pytest.raises(fl.InputError, match=r"ledger\.xlsx, row/id row 2, column '图斑编号': id "
                       r"stored as a number with more than 15 digits.*Fix: format the id "
                       r"column \(图斑编号\) as text"):
        fl.read_measures(path)


def test_text_ids_and_exact_integer_ids_are_read_exactly(tmp_path):
    path = _xlsx(tmp_path / "ledger.xlsx", [["图斑编号", "措施类型", "年份"],
                                            ["430321211000002395", "石灰", 2023]])
    assert fl.read_measures(path)["parcel_id"].tolist() == ["430321211000002395"]
    frame = pd.DataFrame({"图斑编号": pd.array([430321211000002395], dtype="int64"),
                          "措施类型": ["石灰"], "年份": [2023]})
    assert fl.read_measures(frame)["parcel_id"].tolist() == ["430321211000002395"]
    floats = frame.assign(图斑编号=frame["图斑编号"].astype(float))
    with pytest.raises(fl.InputError, match="more than 15 digits"):
        fl.read_measures(floats)


def test_a_row_without_an_id_is_reported_not_fatal_and_never_counted(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    path = _xlsx(tmp_path / "ledger.xlsx", [["图斑编号", "措施类型", "年份"],
                                            ["P1", "石灰", 2023], [None, "深翻耕", 2023]])
    ledger = fl.read_measures(path)
    assert ledger["parcel_id"].isna().tolist() == [False, True]
    assert "1 measure row(s) without a parcel id (row 3)" in caplog.text
    parcels = pd.DataFrame({"parcel_id": ["P1"], "final_class": pd.array([2], dtype="Int8"),
                            "area_mu": [10.0], "township": ["甲镇"]})
    rate = fl.safe_utilisation_rate(parcels, ledger, year=2023)
    assert rate.unknown_measures["measure_type"].tolist() == ["deep_tillage"]


@pytest.mark.parametrize("cell, expected", [
    ("VIP+n", ["VIP+n"]), ("vip+N", ["vip+N"]), ("淹水+石灰", ["淹水", "石灰"]),
    ("VIP+n、休耕", ["VIP+n", "休耕"]), ("", []), (None, [])])
def test_compound_measure_names_stay_whole(cell, expected):
    assert split_measures(cell) == expected


def test_regional_names_and_a_countys_own_names(tmp_path):
    path = _xlsx(tmp_path / "ledger.xlsx", [["图斑编号", "措施类型", "年份"],
                                            ["P1", "VIP+n", 2023], ["P2", "优化施肥", 2023],
                                            ["P3", "稻田综合治理", 2023]])
    with pytest.raises(fl.InputError,
                       match=r"accepted types: .*石灰 \(lime\).*\[measure_types\]"):
        fl.read_measures(path)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[measure_types]\n"稻田综合治理" = "vip_combined"\n', encoding="utf-8")
    ledger = fl.read_measures(path, mapping=mapping)
    assert ledger["measure_type"].tolist() == ["vip_combined", "optimised_fertilising",
                                               "vip_combined"]
    assert set(ledger["measure_class"]) == {"safe_use"}
    mapping.write_text('[measure_types]\n"稻田综合治理" = "magic"\n', encoding="utf-8")
    with pytest.raises(fl.InputError, match=r"unknown measure type in mapping.*magic"):
        fl.read_measures(path, mapping=mapping)
