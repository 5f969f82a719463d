"""Finding a font that renders Chinese in matplotlib charts (no tofu boxes).

Charts need a CJK font. :func:`find_cjk_font` looks, in this order, for

1. the font named by the environment variable ``FARMLAND_CJK_FONT`` (a font file
   path, which is registered with matplotlib, or a family name);
2. the families in :data:`CJK_FAMILIES`, known to matplotlib's font manager
   (Linux: Noto Sans CJK, Source Han Sans, WenQuanYi; Windows: Microsoft YaHei,
   SimHei …; macOS: PingFang SC, Hiragino Sans GB …);
3. any other font matplotlib knows, then any system font matplotlib's cache has
   not seen yet (a font installed after the cache was built),

and accepts a font only if it really draws Chinese (:func:`draws_chinese`): its
character map covers :data:`PROBE_TEXT` (the characters of the class labels and chart
titles) *and* the outlines of 中, 镉 and 亩 are three different glyphs, none of them the
font's "missing glyph" (notdef). The second test refuses fonts such as matplotlib's
bundled "Last Resort" font (matplotlib ≥ 3.11), whose character map covers every
character but draws one box per Unicode block. Preferred families are looked for among
matplotlib's known fonts *and* the system fonts its cache has not seen yet before any
other font is considered. When nothing is found, charts
fall back to English labels and log a warning. On Debian/Ubuntu install
``fonts-noto-cjk`` or ``fonts-wqy-zenhei`` (CI's ``.ci/install_chromium.sh`` installs the
latter); Windows and macOS ship a Chinese font. No font is bundled (docs/decisions.md).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

log = logging.getLogger(__name__)

ENV_VAR = "FARMLAND_CJK_FONT"

#: preferred CJK families, best first (sans-serif, simplified Chinese first)
CJK_FAMILIES: tuple[str, ...] = (
    # Linux (Debian/Ubuntu packages fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei)
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    # Windows
    "Microsoft YaHei", "SimHei", "DengXian", "Microsoft JhengHei",
    # macOS
    "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti", "Arial Unicode MS",
    # other CJK fonts that still cover simplified Chinese
    "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans", "Droid Sans Fallback",
    "AR PL UMing CN", "Noto Serif CJK SC", "SimSun", "NSimSun",
)

#: characters a CJK font must cover: class labels, units and chart wording
PROBE_TEXT = "优先保护类安全利用严格管控未分耕地面积亩乡镇华侨管理区率目标无污染距离半方差观测预测"

#: three characters of different shapes: a real CJK font draws three different glyphs
GLYPH_PROBE = "中镉亩"
#: families that map every character to a placeholder glyph (never a CJK font)
PLACEHOLDER_FAMILIES = ("last resort",)

#: Latin font tried before the CJK font, so digits and English keep their usual look
LATIN_FAMILY = "DejaVu Sans"


@dataclass(frozen=True)
class CJKFont:
    """A font family matplotlib can use for Chinese text."""

    family: str
    path: str


def covers(path: str | os.PathLike, text: str) -> bool:
    """True if the font file at ``path`` has a glyph for every character of ``text``."""
    charmap = _charmap(str(path))
    return all(ord(ch) in charmap for ch in set(text) if not ch.isspace())


@functools.lru_cache(maxsize=64)
def _charmap(path: str) -> frozenset[int]:
    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError) as exc:
        log.debug("cannot read font %s: %s", path, exc)
        return frozenset()


def draws_chinese(path: str | os.PathLike) -> bool:
    """True if the font at ``path`` draws Chinese: it covers :data:`PROBE_TEXT` and draws
    :data:`GLYPH_PROBE` as distinct outlines that are not its notdef (box) glyph."""
    return covers(path, PROBE_TEXT) and _distinct_glyphs(str(path))


@functools.lru_cache(maxsize=64)
def _distinct_glyphs(path: str) -> bool:
    try:
        font = FT2Font(path)
        if any(p in font.family_name.lower() for p in PLACEHOLDER_FAMILIES):
            return False
        charmap = font.get_charmap()
        font.load_glyph(0)
        shapes = {_outline(font)}  # notdef
        for ch in GLYPH_PROBE:
            if not charmap.get(ord(ch)):
                return False
            font.load_char(ord(ch))
            shapes.add(_outline(font))
    except (OSError, RuntimeError, ValueError) as exc:
        log.debug("cannot read font %s: %s", path, exc)
        return False
    return len(shapes) == len(GLYPH_PROBE) + 1


def _outline(font: FT2Font) -> bytes:
    vertices, codes = font.get_path()
    return vertices.round(1).tobytes() + codes.tobytes()


@functools.cache
def find_cjk_font() -> CJKFont | None:
    """The CJK font charts use, or ``None`` (cached for the process; see the module doc).

    Call ``find_cjk_font.cache_clear()`` after installing a font in a running process.
    """
    font = (_from_environment() or _known_font(CJK_FAMILIES) or _newly_installed_font(CJK_FAMILIES)
            or _known_font(None) or _newly_installed_font(None))
    if font is None:
        log.warning("no font that renders Chinese was found: charts use English labels only. "
                    "Install one (Debian/Ubuntu: apt-get install fonts-noto-cjk or fonts-wqy-zenhei; "
                    "Windows has Microsoft YaHei/SimHei) or set %s to a .ttf/.otf/.ttc file",
                    ENV_VAR)
    else:
        log.debug("CJK font for charts: %s (%s)", font.family, font.path)
    return font


def _from_environment() -> CJKFont | None:
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    if Path(value).is_file():
        font_manager.fontManager.addfont(value)
        family = font_manager.FontProperties(fname=value).get_name()
        candidate = CJKFont(family, value)
    else:
        candidate = _family(value)
    if candidate is not None and draws_chinese(candidate.path):
        return candidate
    log.warning("%s=%r is not a font file or family that covers Chinese; ignored", ENV_VAR, value)
    return None


def _family(name: str) -> CJKFont | None:
    for entry in font_manager.fontManager.ttflist:
        if entry.name.lower() == name.lower():
            return CJKFont(entry.name, entry.fname)
    return None


def _known_font(families: tuple[str, ...] | None) -> CJKFont | None:
    """A font in matplotlib's cache that draws Chinese: of ``families`` (in that order),
    or any when ``families`` is ``None``."""
    entries = font_manager.fontManager.ttflist
    if families is None:
        return next((CJKFont(e.name, e.fname) for e in entries if draws_chinese(e.fname)), None)
    by_name: dict[str, str] = {}
    for entry in entries:
        by_name.setdefault(entry.name.lower(), entry.fname)
    for family in families:
        path = by_name.get(family.lower())
        if path and draws_chinese(path):
            return CJKFont(_canonical(family, entries), path)
    return None


def _canonical(family: str, entries: list) -> str:
    return next(e.name for e in entries if e.name.lower() == family.lower())


def _newly_installed_font(families: tuple[str, ...] | None) -> CJKFont | None:
    """A system font missing from matplotlib's (possibly stale) cache that draws Chinese:
    of ``families`` (best first), or any when ``families`` is ``None``."""
    known = {str(Path(e.fname)) for e in font_manager.fontManager.ttflist}
    found = []
    for path in sorted(font_manager.findSystemFonts()):
        if str(Path(path)) in known or not draws_chinese(path):
            continue
        name = FT2Font(path).family_name
        rank = (next((i for i, f in enumerate(families) if f.lower() == name.lower()), None)
                if families is not None else 0)
        if rank is not None:
            found.append((rank, path))
    if not found:
        return None
    path = min(found)[1]
    font_manager.fontManager.addfont(path)
    log.info("registered CJK font %s with matplotlib (not in its font cache)", path)
    return CJKFont(font_manager.FontProperties(fname=path).get_name(), path)


def chart_rc(font: CJKFont | None) -> dict[str, object]:
    """matplotlib rc settings for charts: Latin font first, CJK font as glyph fallback.

    The families are listed in ``font.family`` itself: matplotlib falls back glyph by
    glyph only along that list (a generic ``"sans-serif"`` resolves to one font).
    """
    return {"font.family": [LATIN_FAMILY] + ([font.family] if font else [])}


@functools.cache
def _latin_path() -> str:
    return font_manager.findfont(font_manager.FontProperties(family=LATIN_FAMILY))


def renderable(text: str, font: CJKFont | None) -> bool:
    """True if every character of ``text`` has a glyph in the Latin or the CJK font."""
    missing = {ch for ch in text if not ch.isspace() and not covers(_latin_path(), ch)}
    return not missing or (font is not None and covers(font.path, "".join(missing)))


class _WeightFallbackFilter(logging.Filter):
    """Drops matplotlib's "Failed to find font weight" notice (single-weight CJK fonts)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to find font weight" not in record.getMessage()


@contextmanager
def quiet_weight_fallback() -> Iterator[None]:
    """Silence the notice matplotlib logs for every text drawn in a one-weight CJK font.

    WenQuanYi Zen Hei, for one, comes in weight 500 only; matplotlib then warns on
    each normal/bold lookup although it draws the text correctly.
    """
    logger = logging.getLogger("matplotlib.font_manager")
    flt = _WeightFallbackFilter()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)
