#!/usr/bin/env bash
# Install Debian's PyQGIS for tests/test_styles.py::test_qgis_draws_the_classes_in_their_colours,
# which opens a farmland GeoPackage in QGIS (headless) and checks that the class colours of
# its default styles are drawn. About 230 MB download, 1.1 GB on disk, 1.5-2 minutes.
# Never fatal: without QGIS that one test is skipped and says so.
set -uo pipefail

if /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
    echo "install_qgis: PyQGIS already present, skipping"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-qgis qgis-providers; then
    echo "install_qgis: PyQGIS installed"
else
    echo "install_qgis: could not install python3-qgis; the QGIS render test will be skipped"
fi
exit 0
