"""GB 2762 categories added in issue 14 (fresh fruit, sugarcane, peanuts, brassica, legume and
stem vegetables, celery, pulses, other cereals): every cell as transcribed (sources per cell in
docs/decisions.md, "Standards tables"), the Chinese crop names that reach them, grading at the
limit and the warning for crops the tables do not know."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

import farmland as fl
from farmland.classify.crops import grade_crops
from farmland.io.columns import aliases, normalise_value, value_lookup
from farmland.standards import CROPS, load_standard

ELEMENTS = ("cd", "pb", "hg", "as", "cr")
#: crop -> (cd, pb, hg, as, cr), None where GB 2762 sets no limit for that food
NEW_CATEGORIES = {
    "fresh_fruit": (0.05, 0.1, None, None, None),
    "cranberry_currant": (0.05, 0.2, None, None, None),
    "brassica_veg": (0.05, 0.2, 0.01, 0.5, 0.5),
    "legume_veg": (0.1, 0.2, 0.01, 0.5, 0.5),
    "stem_veg": (0.1, 0.1, 0.01, 0.5, 0.5),
    "celery": (0.2, 0.1, 0.01, 0.5, 0.5),
    "pulses": (0.2, 0.2, None, None, 1.0),
    "peanut": (0.5, 0.2, None, None, None),
    "other_cereal": (0.1, 0.2, None, 0.5, 1.0),
}
OLD_CATEGORIES = ("rice", "milled_rice", "wheat", "maize", "leafy_veg", "root_veg", "tuber_veg",
                  "other_veg")
CELLS = [(crop, el, limit) for crop, limits in NEW_CATEGORIES.items()
         for el, limit in zip(ELEMENTS, limits)]
LIMITED = [(crop, el, limit) for crop, el, limit in CELLS if limit is not None]

#: Chinese (and a few English) names -> category
ALIASES = {
    **dict.fromkeys(["柑橘", "橘子", "橙", "橙子", "柚", "柚子", "苹果", "梨", "桃", "香蕉", "芒果",
                     "荔枝", "龙眼", "桂圆", "新鲜水果", "水果", "甘蔗", "sugarcane"], "fresh_fruit"),
    **dict.fromkeys(["蔓越莓", "醋栗", "黑加仑"], "cranberry_currant"),
    **dict.fromkeys(["花生", "花生仁", "peanut"], "peanut"),
    **dict.fromkeys(["白菜", "大白菜", "小白菜", "青菜", "叶菜类"], "leafy_veg"),
    **dict.fromkeys(["芸薹类蔬菜", "甘蓝", "结球甘蓝", "卷心菜", "花椰菜", "菜花", "西兰花", "青花菜"],
                    "brassica_veg"),
    **dict.fromkeys(["豆类蔬菜", "豇豆", "四季豆", "菜豆", "毛豆", "豆角", "荷兰豆"], "legume_veg"),
    **dict.fromkeys(["茎类蔬菜", "莴笋", "芦笋"], "stem_veg"),
    **dict.fromkeys(["芹菜", "西芹", "黄花菜"], "celery"),
    **dict.fromkeys(["豆类", "大豆", "黄豆", "绿豆"], "pulses"),
    **dict.fromkeys(["高粱", "小米", "粟", "谷子", "荞麦", "燕麦", "大麦", "青稞"], "other_cereal"),
    # existing names keep their crop
    "稻谷": "rice", "水稻": "rice", "大米": "milled_rice", "小麦": "wheat", "玉米": "maize",
    "菠菜": "leafy_veg", "萝卜": "root_veg", "马铃薯": "tuber_veg", "生姜": "tuber_veg",
    "蔬菜": "other_veg",
}
#: berries other than cranberry/currant (Pb row differs between transcriptions) and tea
NOT_MAPPED = ("葡萄", "草莓", "蓝莓", "猕猴桃", "茶叶")


@pytest.fixture(scope="module")
def std():
    return load_standard()


def _samples(crop, **values) -> gpd.GeoDataFrame:
    n = len(crop)
    data = {"sample_id": [f"C{i}" for i in range(n)], "crop": crop}
    data.update({el: values.get(el, [np.nan] * n) for el in ELEMENTS})
    return gpd.GeoDataFrame(data, geometry=[Point(i, 0) for i in range(n)], crs=4545)


# --- the table ---------------------------------------------------------------
@pytest.mark.parametrize("crop,element,expected", CELLS, ids=[f"{c}-{e}" for c, e, _ in CELLS])
def test_cell(std, crop, element, expected):
    assert std.crop_limit(crop, element) == expected
    assert std.crop_limit(crop.upper(), element.upper()) == expected


def test_table_holds_old_and_new_categories_in_order(std):
    assert CROPS == OLD_CATEGORIES + tuple(NEW_CATEGORIES)
    assert tuple(std.crop_as_forms) == CROPS


@pytest.mark.parametrize("crop", list(NEW_CATEGORIES))
def test_new_categories_have_total_arsenic_form(std, crop):
    # no inorganic-As limit among them: as_form only matters where the 'as' cell is filled
    assert std.crop_as_form(crop) == "total"


# --- aliases -----------------------------------------------------------------
@pytest.mark.parametrize("name,crop", ALIASES.items())
def test_alias(name, crop):
    assert value_lookup("crop")[normalise_value(name)] == crop


@pytest.mark.parametrize("name", NOT_MAPPED)
def test_name_left_unmapped(name):
    assert normalise_value(name) not in value_lookup("crop")


def test_no_alias_names_two_crops():
    owner: dict[str, str] = {}
    for crop, words in aliases()["values"]["crop"].items():
        assert crop in CROPS
        for word in [crop, *words]:
            key = normalise_value(word)
            assert owner.setdefault(key, crop) == crop, f"{word!r}: {owner[key]} and {crop}"


def test_reader_maps_the_chinese_names():
    names = ["甘蔗", "柑橘", "花生", "白菜", "甘蓝", "豇豆", "芹菜", "莴笋", "大豆", "高粱"]
    frame = pd.DataFrame({"样品编号": [f"C{i}" for i in range(len(names))],
                          "X": [621_000.0 + 10 * i for i in range(len(names))],
                          "Y": [2_719_000.0] * len(names), "作物": names,
                          "镉": ["0.04"] * len(names)})
    out = fl.read_crop_samples(frame, crs="EPSG:4545")
    assert out["crop"].tolist() == ["fresh_fruit", "fresh_fruit", "peanut", "leafy_veg",
                                    "brassica_veg", "legume_veg", "celery", "stem_veg",
                                    "pulses", "other_cereal"]


# --- grading -----------------------------------------------------------------
@pytest.mark.parametrize("crop,element,limit", LIMITED, ids=[f"{c}-{e}" for c, e, _ in LIMITED])
def test_grade_at_the_limit(std, crop, element, limit):
    # domain.md §3.4: <= limit -> 1, <= 2 x limit -> 2, above -> 3
    values = [limit, limit * (1 + 1e-6), 2 * limit, 2 * limit * (1 + 1e-6)]
    out = grade_crops(_samples([crop] * 4, **{element: values}), standard=std)
    assert out[f"grade_{element}"].tolist() == [1, 2, 2, 3]
    assert out["crop_grade"].tolist() == [1, 2, 2, 3]
    assert out["exceeds"].tolist() == [False, True, True, True]


@pytest.mark.parametrize("crop,element", [(c, e) for c, e, lim in CELLS if lim is None])
def test_element_without_limit_is_not_graded(std, crop, element):
    out = grade_crops(_samples([crop], **{element: [100.0], "cd": [0.01]}), standard=std)
    assert pd.isna(out[f"grade_{element}"].iloc[0])
    assert out["crop_grade"].tolist() == [1]


def test_sugarcane_and_celery_examples(std):
    crops = fl.read_crop_samples(pd.DataFrame({
        "样品编号": ["S1", "S2", "Q1", "Q2"], "X": [621_000.0, 621_010.0, 621_020.0, 621_030.0],
        "Y": [2_719_000.0] * 4, "作物": ["甘蔗", "甘蔗", "芹菜", "莴笋"],
        "镉": ["0.05", "0.06", "0.2", "0.2"], "铅": ["0.1", "0.1", "0.1", "0.1"]}),
        crs="EPSG:4545")
    out = grade_crops(crops, standard=std)
    # sugarcane: fresh-fruit Cd 0.05; celery Cd 0.2 while other stem vegetables have 0.1
    assert out["crop_grade"].tolist() == [1, 2, 1, 2]


# --- warnings ----------------------------------------------------------------
def test_warning_names_each_unknown_crop_with_its_count(std, caplog):
    caplog.set_level(logging.WARNING, logger="farmland.classify.crops")
    samples = _samples(["xxx", "rice", "xxx", "yyy", "xxx", None], cd=[0.1] * 6)
    out = grade_crops(samples, standard=std)
    assert out["crop_grade"].isna().tolist() == [True, False, True, True, True, True]
    [record] = [r for r in caplog.records if "no GB 2762 category" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("crop samples: 3 samples of 'xxx', 1 sample of (no crop name), "
                              "1 sample of 'yyy' are not graded: no GB 2762 category; name each "
                              "crop as one of rice, milled_rice, wheat, maize, ")
    assert "fresh_fruit, cranberry_currant, brassica_veg" in message
    assert "[values.crop] in farmland/io/aliases.toml" in message
    assert "a row in crop_limits.csv" in message


def test_warning_for_a_known_crop_without_a_limited_element(std, caplog):
    caplog.set_level(logging.WARNING, logger="farmland.classify.crops")
    grade_crops(_samples(["fresh_fruit", "peanut", "fresh_fruit"], hg=[0.5, 0.5, 0.5]),
                standard=std)
    assert ("crop samples: 2 samples of 'fresh_fruit', 1 sample of 'peanut' are not graded: "
            "no element with a GB 2762 limit for the crop was measured (limits for "
            "fresh_fruit: cd, pb; peanut: cd, pb; element columns given: cd, pb, hg, as, cr)"
            ) in caplog.text


def test_no_warning_when_all_graded(std, caplog):
    caplog.set_level(logging.WARNING, logger="farmland.classify.crops")
    grade_crops(_samples(["rice", "peanut"], cd=[0.1, 0.1]), standard=std)
    assert "not graded" not in caplog.text
