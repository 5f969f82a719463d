"""``farmland flag``: flag layers and the per-township summary of a classification, with the
hand-computed case of test_flags.py."""

from __future__ import annotations

import pandas as pd
import pyogrio
from test_flags import flag_crops, flag_parcels, flag_samples

from farmland.io.write import write_gpkg_layers
from farmland.vocabulary import COUNTY


def test_cli_flag_writes_layers_and_summary(cli, tmp_path):
    gpkg = tmp_path / "classification.gpkg"
    write_gpkg_layers(gpkg, {"parcels": flag_parcels().drop(columns="crop_exceedance"),
                             "samples": flag_samples(), "crops": flag_crops()})
    out = tmp_path / "out"
    res = cli("flag", gpkg, "-o", out)
    assert res.exit_code == 0, res.output
    layers = {name for name, _ in pyogrio.list_layers(out / "flags.gpkg")} - {"layer_styles"}
    assert layers == {"empty_cells", "sparse_townships", "thin_zones", "uncertain_parcels",
                      "crop_exceedance_class1", "unclassified", "zones"}
    assert len(pyogrio.read_dataframe(out / "flags.gpkg", layer="empty_cells")) == 4
    raw = (out / "flag_summary.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out / "flag_summary.csv", encoding="utf-8-sig")
    assert table["乡镇 township"].tolist() == ["T1", "T2", "T3", COUNTY]
    assert "T2" in res.output
    again = cli("flag", gpkg, "-o", out)
    assert again.exit_code == 2 and "already exists" in again.output
