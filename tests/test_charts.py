"""PNG charts (farmland.report.charts) and the CJK font lookup (farmland.report.fonts)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from farmland.classify.summary import class_area_table
from farmland.errors import InputError, OutputExistsError
from farmland.geostats.variogram import VariogramModel
from farmland.report import charts, fonts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOWNS = ["清水镇", "华侨管理区", "城关镇"]


@pytest.fixture
def class_table() -> pd.DataFrame:
    parcels = pd.DataFrame({
        "township": ["清水镇", "清水镇", "华侨管理区", "华侨管理区", "城关镇"],
        "final_class": pd.array([1, 2, 3, None, 1], dtype="Int8"),
        "area_mu": [120.0, 30.0, 12.5, 4.0, 80.0],
    })
    return class_area_table(parcels)


@pytest.fixture
def rate_table() -> pd.DataFrame:
    return pd.DataFrame({"level": ["county", "township", "township", "township"],
                         "name": ["全县", *TOWNS], "rate": [0.8, 0.95, 0.5, np.nan],
                         "target": 0.91})


def draw(func, *args, **kwargs):
    """Call a chart function; return (path, matplotlib missing-glyph warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = func(*args, **kwargs)
    return path, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000  # a drawn chart, not an empty canvas


def test_cjk_font_found_on_this_machine():
    font = fonts.find_cjk_font()
    if font is None and not os.environ.get("CI"):
        pytest.skip("no CJK font installed (run .ci/install_fonts.sh)")
    assert font is not None
    assert fonts.covers(font.path, "清水镇华侨管理区优先保护类安全利用类严格管控类亩")
    assert fonts.chart_rc(font) == {"font.family": ["DejaVu Sans", font.family]}


def test_covers_and_renderable():
    latin = fonts.font_manager.findfont("DejaVu Sans")
    assert fonts.covers(latin, "Area (mu) 1,234")
    assert not fonts.covers(latin, "亩")
    assert fonts.renderable("Township 12", None)
    assert not fonts.renderable("清水镇", None)
    assert fonts.chart_rc(None) == {"font.family": ["DejaVu Sans"]}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_class_area_chart(tmp_path, class_table, lang):
    path, missing = draw(charts.class_area_chart, class_table, tmp_path / "c.png", lang=lang)
    assert_png(path)
    if fonts.find_cjk_font() is not None:
        assert missing == []  # every Chinese glyph was found: no tofu boxes


def test_rate_chart_with_undefined_rate(tmp_path, rate_table):
    path, missing = draw(charts.rate_chart, rate_table, tmp_path / "r.png")
    assert_png(path)
    if fonts.find_cjk_font() is not None:
        assert missing == []
    assert charts.rate_rows(rate_table)["name"].tolist() == [*TOWNS, "全县"]


def test_geostat_and_coverage_charts(tmp_path, caplog):
    model = VariogramModel("spherical", 0.05, 0.4, 3000.0)
    lags = np.array([250.0, 750.0, 1500.0, 3000.0, 4500.0])
    path, missing = draw(charts.variogram_chart, lags, model(lags), model, tmp_path / "v.png",
                         "Cd 半变异函数 variogram", counts=[30, 80, 120, 150, 90])
    assert_png(path)
    caplog.set_level(logging.INFO, logger="farmland.report.charts")
    obs = np.array([0.1, 0.2, 0.4, 0.8, 0.0])
    path, missing2 = draw(charts.crossval_chart, obs, obs * 1.1, tmp_path / "x.png",
                          "Cd 交叉验证 cross-validation")
    assert_png(path)
    assert "1 pair(s) <= 0 not drawn on log axes" in caplog.text
    effect = pd.DataFrame({"township": [*TOWNS, "全县 County"],
                           "mean_dist_before_m": [900.0, 1200.0, 400.0, 800.0],
                           "mean_dist_after_m": [500.0, 600.0, 380.0, 490.0]})
    before, after = charts.coverage_from_effect(effect)
    assert before["华侨管理区"] == 1200.0 and after["华侨管理区"] == 600.0
    path, missing3 = draw(charts.coverage_chart, before, after, tmp_path / "cov.png")
    assert_png(path)
    if fonts.find_cjk_font() is not None:
        assert missing == missing2 == missing3 == []


def test_without_cjk_font_labels_fall_back_to_english(tmp_path, class_table, monkeypatch, caplog):
    monkeypatch.setattr(charts, "find_cjk_font", lambda: None)
    labels = charts.chart_labels("zh")
    assert not labels.bilingual
    assert labels.t("面积", "Area") == "Area"
    assert labels.text("Cd 半变异函数 variogram") == "Cd variogram"
    path, missing = draw(charts.class_area_chart, class_table, tmp_path / "c.png")
    assert_png(path)
    assert missing == []  # never tofu: names became codes
    assert "T01=华侨管理区" in caplog.text  # table order (sorted by township)


def test_chart_bytes_are_reproducible(tmp_path, class_table):
    a = charts.class_area_chart(class_table, tmp_path / "a.png")
    b = charts.class_area_chart(class_table, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()


def test_chart_errors(tmp_path, class_table):
    path = charts.class_area_chart(class_table, tmp_path / "c.png")
    with pytest.raises(OutputExistsError, match="already exists"):
        charts.class_area_chart(class_table, path)
    charts.class_area_chart(class_table, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]
    with pytest.raises(InputError, match="lacks column.*mean_dist_after_m"):
        charts.coverage_from_effect(pd.DataFrame({"township": ["a"], "mean_dist_before_m": [1.0]}))
    with pytest.raises(InputError, match="lags and gamma differ in length"):
        charts.variogram_chart([1.0, 2.0], [0.1], None, tmp_path / "v.png", "v")
    with pytest.raises(InputError, match="unknown report language"):
        charts.class_area_chart(class_table, tmp_path / "d.png", lang="fr")


def test_font_from_environment_variable(monkeypatch):
    found = fonts.find_cjk_font()
    if found is None:
        pytest.skip("no CJK font installed")
    monkeypatch.setenv(fonts.ENV_VAR, found.path)
    fonts.find_cjk_font.cache_clear()
    try:
        assert fonts.find_cjk_font().path == found.path
        monkeypatch.setenv(fonts.ENV_VAR, fonts.font_manager.findfont("DejaVu Sans"))
        fonts.find_cjk_font.cache_clear()
        assert fonts.find_cjk_font() == found  # a Latin-only font is ignored
    finally:
        monkeypatch.delenv(fonts.ENV_VAR)
        fonts.find_cjk_font.cache_clear()
