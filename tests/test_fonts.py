"""Charts show Chinese as characters, never as boxes (issue 16.1).

matplotlib ≥ 3.11 bundles the "Last Resort" font: its character map covers every
character, but each CJK ideograph is drawn as the same placeholder box. A font test that
only reads the character map accepts it. These tests render real glyphs and compare them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from farmland.report import charts, fonts

LAST_RESORT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "LastResortHE-Regular.ttf"
#: a private-use code point no font draws: every font shows its notdef box for it
MISSING = "\U000F0000"


def _pixels(text: str, family: list[str]) -> np.ndarray:
    """Greyscale pixels of ``text`` drawn at 40 pt in ``family`` (Agg, no pyplot)."""
    with (matplotlib.rc_context({"font.family": family}), fonts.quiet_weight_fallback(),
          warnings.catch_warnings()):
        warnings.simplefilter("ignore", UserWarning)  # "Glyph … missing": intended here
        fig = Figure(figsize=(1.0, 1.0), dpi=60)
        canvas = FigureCanvasAgg(fig)
        fig.text(0.5, 0.5, text, fontsize=40, ha="center", va="center")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., 0].copy()


def test_a_placeholder_font_covers_everything_and_is_refused():
    if not LAST_RESORT.is_file():
        pytest.skip("this matplotlib bundles no Last Resort font")
    assert fonts.covers(LAST_RESORT, fonts.PROBE_TEXT)          # the trap
    assert not fonts.draws_chinese(LAST_RESORT)                 # the fix
    matplotlib.font_manager.fontManager.addfont(str(LAST_RESORT))
    family = matplotlib.font_manager.FontProperties(fname=str(LAST_RESORT)).get_name()
    # drawn with it, two different ideographs are the same box
    assert np.array_equal(_pixels("中", [family]), _pixels("镉", [family]))


def test_the_chosen_font_draws_distinct_chinese_glyphs():
    font = fonts.find_cjk_font()
    assert font is not None, ("no CJK font on this machine: .ci/run installs fonts-wqy-zenhei; "
                              "on a workstation install Noto Sans CJK SC or WenQuanYi Zen Hei")
    assert fonts.draws_chinese(font.path)
    assert "last resort" not in font.family.lower()
    family = fonts.chart_rc(font)["font.family"]
    zhong, ge, box = _pixels("中", family), _pixels("镉", family), _pixels(MISSING, family)
    ink = (zhong < 128).sum()
    assert ink > 20                                   # something is drawn
    assert not np.array_equal(zhong, ge)              # two characters, two shapes
    assert not np.array_equal(zhong, box)             # not the missing-glyph box


def test_class_area_chart_is_bilingual_only_with_a_real_font(tmp_path, monkeypatch, caplog):
    import pandas as pd

    table = pd.DataFrame({"township": ["甲镇", "全县 County"], "class1_mu": [10.0, 10.0],
                          "class2_mu": [5.0, 5.0], "class3_mu": [1.0, 1.0],
                          "unclassified_mu": [0.0, 0.0]})
    assert charts.chart_labels("zh").bilingual is (fonts.find_cjk_font() is not None)
    monkeypatch.setattr(charts, "find_cjk_font", lambda: None)
    caplog.set_level(logging.WARNING)
    labels = charts.chart_labels("zh")
    assert labels.bilingual is False and labels.font is None
    charts.class_area_chart(table, tmp_path / "en.png", lang="zh")
    assert (tmp_path / "en.png").stat().st_size > 1000
