"""Strict-control closed loop (issue 18): the ledger's rules, each loop status, each
contradiction, township coverage, carry-over and the D-area minimum stage of the rate.
Every expected number is worked by hand from the small tables below."""

from __future__ import annotations

import pandas as pd
import pytest

from farmland.control import check_ledger, closed_loop, loop_status_of, parse_min_stages
from farmland.errors import InputError
from farmland.io.control_tables import parse_dates, read_control_ledger
from farmland.rate.accounting import safe_utilisation_rate
from farmland.vocabulary import COUNTY

HEADER = "图斑编号,环节,日期,结果,责任人,种植作物,去向,批次号\n"


def _ledger_csv(tmp_path, body: str, name: str = "ledger.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8-sig")
    return path


def _parcels():
    # seven class-3 parcels (A..G), one class-2 parcel H; areas chosen to add up by hand
    return pd.DataFrame({
        "parcel_id": list("ABCDEFGH"),
        "township": ["东岩乡"] * 6 + ["清水镇", "清水镇"],
        "village": ["平头村"] * 8,
        "final_class": pd.array([3, 3, 3, 3, 3, 3, 3, 2], dtype="Int8"),
        "area_mu": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 5.0],
    })


LEDGER = (
    "B,告知,2023-03-01,已告知,张三,,,\n"
    "B,划定,2023-03-05,通过,县农业农村局,,,\n"
    "C,告知,2023/3/1,通过,张三,,,\n"
    "C,划定,2023年3月5日,通过,县农业农村局,,,\n"
    "C,种植巡查,20230610,合格,李四,玉米,,\n"
    "D,告知,2023-03-01,通过,张三,,,\n"
    "D,划定,2023-03-05,通过,县农业农村局,,,\n"
    "D,种植巡查,2023-06-10,通过,李四,玉米,,\n"
    "D,收获核查,2023-09-20,通过,王五,玉米,饲料加工,LOT-7\n"
    "E,告知,2023-03-01,通过,张三,,,\n"
    "E,划定,2023-03-05,通过,县农业农村局,,,\n"
    "E,种植巡查,2023-06-10,通过,李四,玉米,,\n"
    "E,收获核查,2023-09-20,通过,王五,玉米,饲料加工,\n"
    "E,验收,2023-11-30,通过,县农业农村局,,,\n"
    "F,告知,2023-03-01,通过,张三,,,\n"
    "F,划定,2023-03-05,通过,县农业农村局,,,\n"
    "F,种植巡查,2023-06-10,不合格,李四,稻谷,,\n"
    "G,划定,2023-03-05,通过,县农业农村局,,,\n"
    "G,种植巡查,2023-06-10,通过,李四,玉米,,\n"
    "H,告知,2023-03-01,通过,张三,,,\n"
)


@pytest.fixture
def ledger(tmp_path):
    return check_ledger(read_control_ledger(_ledger_csv(tmp_path, LEDGER)),
                        _parcels()["parcel_id"], 2023)


# -- reading ---------------------------------------------------------------------------------
def test_reader_maps_chinese_stages_results_and_every_date_format(ledger):
    c = ledger.loc[ledger["parcel_id"] == "C"]
    assert list(c["stage"]) == ["notified", "designated", "inspected"]
    assert list(c["date"].dt.strftime("%Y-%m-%d")) == ["2023-03-01", "2023-03-05", "2023-06-10"]
    assert list(ledger.loc[ledger["parcel_id"] == "F", "result"]) == ["pass", "pass", "fail"]
    assert ledger.loc[(ledger["parcel_id"] == "F") & (ledger["stage"] == "inspected"),
                      "planted_crop"].item() == "rice"
    d = ledger.loc[(ledger["parcel_id"] == "D") & (ledger["stage"] == "harvest_checked")]
    assert (d["destination"].item(), d["lot_id"].item()) == ("饲料加工", "LOT-7")


def test_parse_dates_refuses_impossible_dates():
    got = parse_dates(pd.Series(["2023-02-30", "2023.7.1", "7/1/2023", "", None]))
    assert got.isna().tolist() == [True, False, True, True, True]
    assert got.iloc[1] == pd.Timestamp(2023, 7, 1)


@pytest.mark.parametrize(("row", "column", "words"), [
    ("B,收割,2023-03-01,通过,张三,,,\n", "环节", "unrecognised value"),
    ("B,告知,2023-13-01,通过,张三,,,\n", "日期", "not a date"),
    ("B,告知,,通过,张三,,,\n", "日期", "empty cell"),
    ("B,告知,2023-03-01,,张三,,,\n", "结果", "unrecognised value"),
])
def test_reader_refuses_bad_cells_naming_file_row_and_column(tmp_path, row, column, words):
    path = _ledger_csv(tmp_path, row)
    with pytest.raises(InputError) as err:
        read_control_ledger(path)
    text = str(err.value)
    assert "ledger.csv" in text and column in text and words in text
    assert "line 2 (图斑 B)" in text    # the line, and the parcel beside it
    assert "\n" not in text


# -- rules between rows ----------------------------------------------------------------------
def _check(tmp_path, body: str):
    return check_ledger(read_control_ledger(_ledger_csv(tmp_path, body)), list("ABCDEFGH"),
                        2023, file="ledger.csv")


def test_unknown_parcel_and_date_outside_the_year_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"parcel id not in the classification.*Z"):
        _check(tmp_path, "Z,告知,2023-03-01,通过,张三,,,\n")
    with pytest.raises(InputError, match=r"date outside the ledger year.*2022-12-30"):
        _check(tmp_path, "A,告知,2022-12-30,通过,张三,,,\n")


def test_a_stage_dated_before_an_earlier_phase_is_refused(tmp_path):
    body = ("A,划定,2023-05-01,通过,局,,,\n"
            "A,种植巡查,2023-04-20,通过,李四,玉米,,\n")
    with pytest.raises(InputError) as err:
        _check(tmp_path, body)
    text = str(err.value)
    assert "stage dated before an earlier stage" in text
    assert "line 3 (图斑 A)" in text and "种植巡查" in text and "划定 designated 2023-05-01" in text
    assert "column '日期'" in text      # the file's own column name


def test_notified_and_designated_are_one_phase_in_either_order(tmp_path):
    body = ("A,划定,2023-03-01,通过,局,,,\n"
            "A,告知,2023-03-09,通过,张三,,,\n")
    assert len(_check(tmp_path, body)) == 2


def test_a_stage_after_a_failed_one_needs_a_correction_row(tmp_path):
    failed = ("A,告知,2023-03-01,通过,张三,,,\n"
              "A,划定,2023-03-05,通过,局,,,\n"
              "A,种植巡查,2023-06-10,不合格,李四,稻谷,,\n")
    harvest = "A,收获核查,2023-09-20,通过,王五,玉米,,\n"
    with pytest.raises(InputError, match=r"after a failed stage.*种植巡查 planting inspected "
                                         r"failed on 2023-06-10"):
        _check(tmp_path, failed + harvest)
    corrected = "A,种植巡查,2023-07-01,已整改,李四,玉米,,\n"
    assert len(_check(tmp_path, failed + corrected + harvest)) == 5
    late = "A,种植巡查,2023-10-01,整改,李四,玉米,,\n"   # corrected after the harvest check
    with pytest.raises(InputError, match="after a failed stage"):
        _check(tmp_path, failed + harvest + late)


# -- statuses ----------------------------------------------------------------------------------
def test_loop_status_is_the_furthest_status_reached_in_order():
    assert loop_status_of(set()) == ("none", "notified")
    assert loop_status_of({"notified"}) == ("none", "designated")
    assert loop_status_of({"notified", "designated"}) == ("notified", "inspected")
    assert loop_status_of({"notified", "designated", "harvest_checked"}) == (
        "notified", "inspected")
    assert loop_status_of({"notified", "designated", "inspected", "harvest_checked",
                           "accepted"}) == ("closed", None)


def test_each_status_and_the_named_missing_or_failed_stage(ledger):
    res = closed_loop(_parcels(), ledger, year=2023)
    got = res.parcels.set_index("parcel_id")
    assert list(got.index) == list("ABCDEFG")             # class 3 only
    assert got["loop_status"].to_dict() == {
        "A": "none", "B": "notified", "C": "inspected", "D": "harvest_checked", "E": "closed",
        "F": "notified", "G": "none"}
    assert got.at["A", "problem"] == "缺失 missing: 告知 notified"
    assert got.at["D", "problem"] == "缺失 missing: 验收 accepted"
    assert got.at["F", "problem"] == ("未通过 failed: 种植巡查 planting inspected 2023-06-10 "
                                      "(种植 planted 稻谷)")
    assert got.at["E", "problem"] == "" and got.at["E", "missing_stage"] == ""
    # default minimum for D: designated + inspected (G has no notification but meets it)
    assert got["meets_min"].to_dict() == {"A": False, "B": False, "C": True, "D": True,
                                          "E": True, "F": False, "G": True}
    assert got.at["D", "lot_id"] == "LOT-7" and got.at["D", "destination"] == "饲料加工"
    assert got.at["E", "date_accepted"] == pd.Timestamp(2023, 11, 30)


def test_township_coverage_against_100_percent(ledger):
    t = closed_loop(_parcels(), ledger, year=2023).townships.set_index("township")
    assert list(t.index) == ["东岩乡", "清水镇", COUNTY]
    dong = t.loc["东岩乡"]
    assert dong["class3_mu"] == 210.0 and dong["n_class3"] == 6
    assert (dong["none_mu"], dong["notified_mu"], dong["inspected_mu"],
            dong["harvest_checked_mu"], dong["closed_mu"]) == (10.0, 80.0, 30.0, 40.0, 50.0)
    assert dong["coverage_closed"] == pytest.approx(50 / 210)
    assert dong["coverage_min"] == pytest.approx(120 / 210)          # C + D + E
    county = t.loc[COUNTY]
    assert county["class3_mu"] == 280.0                             # every 亩 once
    assert sum(county[f"{s}_mu"] for s in ("none", "notified", "inspected", "harvest_checked",
                                           "closed")) == 280.0
    assert county["meets_min_mu"] == 190.0 and county["unclosed_mu"] == 230.0
    assert county["target"] == 1.0


def test_min_stages_is_configurable_and_checked(ledger):
    res = closed_loop(_parcels(), ledger, year=2023,
                      min_stages=parse_min_stages("harvest_checked,designated"))
    assert res.min_stages == ("designated", "harvest_checked")
    assert set(res.parcels.loc[res.parcels["meets_min"], "parcel_id"]) == {"D", "E"}
    with pytest.raises(InputError, match="unknown closed-loop stage"):
        parse_min_stages("designated,harvest")


# -- contradictions ----------------------------------------------------------------------------
def test_each_contradiction(ledger):
    crops = pd.DataFrame({"sample_id": ["NP1", "NP2", "NP3"], "crop": ["maize", "rice", "maize"],
                          "year": [2023, 2022, 2023], "exceeds": [True, True, False],
                          "parcel_id": ["E", "E", "D"]})
    measures = pd.DataFrame({"parcel_id": ["A", "B"], "measure_type": ["fallow", "ban_zone"],
                             "measure_class": ["strict_control", "strict_control"],
                             "year": pd.array([2023, 2023], dtype="Int64")})
    res = closed_loop(_parcels(), ledger, year=2023, crops=crops, measures=measures)
    c = res.contradictions
    assert list(zip(c["kind"], c["parcel_id"], strict=True)) == [
        ("closed_but_exceeding", "E"),            # the 2022 sample does not count
        ("forbidden_planted", "F"),               # rice is controlled by default
        ("measure_without_designation", "A"),     # B has its designation
        ("not_class3", "H")]
    assert "NP1 (maize)" in c.loc[c["kind"] == "closed_but_exceeding", "detail"].item()
    assert "稻谷" in c.loc[c["kind"] == "forbidden_planted", "detail"].item()
    assert "class in this run: 2" in c.loc[c["kind"] == "not_class3", "detail"].item()
    assert res.parcels.set_index("parcel_id")["n_contradictions"].to_dict()["F"] == 1


def test_a_corrected_finding_stays_listed_with_its_correction(tmp_path):
    body = ("A,告知,2023-03-01,通过,张三,,,\n"
            "A,划定,2023-03-05,通过,局,,,\n"
            "A,种植巡查,2023-06-10,不合格,李四,稻谷,,\n"
            "A,种植巡查,2023-06-24,已整改,李四,玉米,,\n")
    led = check_ledger(read_control_ledger(_ledger_csv(tmp_path, body)), list("ABCDEFGH"), 2023)
    res = closed_loop(_parcels(), led, year=2023)
    fp = res.contradictions.loc[res.contradictions["kind"] == "forbidden_planted"]
    assert fp["detail"].item().endswith("已整改 corrected 2023-06-24")
    assert res.parcels.set_index("parcel_id").at["A", "loop_status"] == "inspected"


def test_a_product_zone_list_decides_what_is_forbidden(ledger):
    # maize controlled on C (its zone), rice allowed on F: the contradiction moves
    res = closed_loop(_parcels(), ledger, year=2023,
                      controlled={"C": ["maize"], "F": ["leafy_veg"]})
    fp = res.contradictions.loc[res.contradictions["kind"] == "forbidden_planted"]
    assert list(fp["parcel_id"]) == ["C"]


# -- multi-year ------------------------------------------------------------------------------
def test_a_closed_loop_carries_its_designation_into_the_next_year():
    parcels = _parcels()
    previous = pd.DataFrame({"parcel_id": ["A", "B", "H"],
                             "loop_status": ["closed", "inspected", "closed"]})
    res = closed_loop(parcels, None, year=2024, previous=previous, previous_label="R0001 2023")
    got = res.parcels.set_index("parcel_id")
    assert got.at["A", "loop_status"] == "notified"          # 告知 + 划定 carried
    assert got.at["A", "carried_from"].endswith("R0001 2023")
    assert got.at["A", "missing_stage"] == "inspected"
    assert got.at["B", "loop_status"] == "none"              # not closed: nothing carried
    assert got.at["B", "previous_status"] == "inspected"
    assert list(res.released["parcel_id"]) == ["H"]          # class 2 now
    assert int(res.released["final_class"].item()) == 2


# -- the rate counts D only for loops at the minimum stage -------------------------------------
def test_rate_counts_controlled_area_only_when_the_loop_meets_the_minimum(ledger):
    parcels = _parcels()
    measures = pd.DataFrame({"parcel_id": ["A", "C"], "measure_type": ["fallow", "fallow"],
                             "measure_class": ["strict_control", "strict_control"],
                             "year": pd.array([2023, 2023], dtype="Int64")})
    res = closed_loop(parcels, ledger, year=2023)
    plain = safe_utilisation_rate(parcels, measures, year=2023)
    gated = safe_utilisation_rate(parcels, measures, year=2023, loop_ok=res.loop_ok())
    # denominator: class 2 (5) + class 3 (280) = 285 亩
    assert plain.county["numerator_mu"] == 40.0             # A + C controlled by measure
    assert gated.county["numerator_mu"] == 30.0             # A's loop is "none"
    assert gated.county["denominator_mu"] == 285.0
    assert gated.county["loop_incomplete3_mu"] == 10.0
    status = gated.parcels.set_index("parcel_id")["status"]
    assert (status["A"], status["C"], status["B"]) == ("loop_incomplete", "controlled",
                                                       "uncontrolled")
