#!/usr/bin/env bash
# Install a CJK font so the report charts (farmland.charts) render Chinese labels
# instead of falling back to English-only labels. Used by CI and by tests/test_charts.py
# (which asserts a CJK font is found when CI is set).
# Idempotent: does nothing when a font covering Chinese is already installed.
# Needs root on Debian/Ubuntu. fonts-wqy-microhei: compact sans-serif CJK font
# (~1.6 MB download, ~5 MB installed).
set -euo pipefail

have_cjk_font() {
    command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .
}

if have_cjk_font; then
    echo "install_fonts: a CJK font is already present, skipping"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends fonts-wqy-microhei fontconfig
# matplotlib caches its font list; farmland.fonts also scans for fonts missing from
# that cache, but a fresh cache keeps the first chart fast.
rm -rf "${MPLCONFIGDIR:-$HOME/.cache/matplotlib}"/fontlist-*.json 2>/dev/null || true
echo "install_fonts: $(fc-list :lang=zh family | head -n 1)"
