#!/usr/bin/env bash
# Install Debian's Chromium and a CJK font for the map browser tests
# (tests/test_map_browser.py) and benchmarks/map_render.py.
# Idempotent: does nothing when /usr/bin/chromium and a CJK font are already there.
# Needs root (CI runs as root). Playwright's own browser download is not used.
set -euo pipefail

have_cjk_font() {
    command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .
}

if [ -x /usr/bin/chromium ] && have_cjk_font; then
    echo "install_chromium: chromium and a CJK font already present, skipping"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# fonts-wqy-zenhei: compact CJK font (~7 MB) so Chinese labels render in screenshots;
# fonts-dejavu-core: Latin fallback.
apt-get install -y -qq --no-install-recommends \
    chromium fonts-wqy-zenhei fonts-dejavu-core fontconfig
echo "install_chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
