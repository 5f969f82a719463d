"""``farmland sources``: outputs, ranking on a small county, refusals and bad input."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from conftest import CRS, X0, Y0, make_parcels, make_points, make_samples

from farmland.io.write import write_gpkg_layers
from farmland.runs import folder


def _county(tmp_path):
    """A 2 km × 1 km strip of 200 m parcels: a class-3/2 block around an enterprise in the
    west, class 1 elsewhere; 50 samples on a grid, Cd and Pb raised near the enterprise."""
    boxes, classes, drivers = [], [], []
    for i in range(10):
        for j in range(5):
            boxes.append((i * 200, j * 200, (i + 1) * 200, (j + 1) * 200))
            hot = i <= 2
            classes.append(3 if i == 0 else 2 if hot else 1)
            drivers.append("cd" if hot else None)
    parcels = make_parcels(boxes, final_class=classes, driving_element=drivers)
    xy = np.array([(i * 200 + 100, j * 200 + 100) for i in range(10) for j in range(5)], float)
    rng = np.random.default_rng(7)
    near = np.exp(-xy[:, 0] / 400.0)
    samples = make_samples(xy, cd=np.round(0.2 + 2.0 * near + rng.uniform(0, 0.05, 50), 3),
                           pb=np.round(35 + 150 * near + rng.uniform(0, 3, 50), 1),
                           zn=np.round(90 + 100 * near + rng.uniform(0, 5, 50), 1),
                           hg=np.round(0.05 + rng.uniform(0, 0.01, 50), 4),
                           ph=6.0, usable=True, pi_cd=1.0)
    gpkg = tmp_path / "run" / "classification.gpkg"
    gpkg.parent.mkdir()
    write_gpkg_layers(gpkg, {"parcels": parcels, "samples": samples})
    ent = tmp_path / "enterprises.csv"
    pd.DataFrame({"企业编号": ["E1", "E2"], "企业名称": ["冶炼厂", "<b>化工</b>"],
                  "行业": ["有色金属冶炼", "化工"], "特征污染物": ["Cd,Pb,Zn", "Hg"],
                  "X": [X0 - 50, X0 + 1900], "Y": [Y0 + 500, Y0 + 500]}).to_csv(
        ent, index=False, encoding="utf-8-sig")
    return gpkg, ent


def test_sources_writes_every_output_and_ranks_the_smelter_first(cli, tmp_path):
    gpkg, ent = _county(tmp_path)
    out = tmp_path / "out"
    res = cli("sources", gpkg, "--sources", ent, "--crs", CRS, "--permutations", "99",
              "-o", out)
    assert res.exit_code == 0, res.output
    for name in folder.SOURCES_FILES:
        assert (out / name).exists(), name
    clusters = pd.read_csv(out / folder.SOURCE_CLUSTERS, encoding="utf-8-sig")
    assert clusters["cluster_id"].tolist() == ["CL001"]
    # columns 0-2 (15 parcels of 200 m = 60 亩 each): 900 亩, of which column 0 class 3
    assert clusters.loc[0, "area_mu"] == 900.0 and clusters.loc[0, "area_class3_mu"] == 300.0
    ranked = pd.read_csv(out / folder.SOURCE_CANDIDATES, encoding="utf-8-sig")
    assert ranked.loc[ranked["rank"] == 1, "candidate_id"].tolist() == ["E1"]
    # PMF ran on the 50 samples: the factors raised in CL001 carry E1's Cd, Pb and Zn
    top = ranked[ranked["rank"] == 1].iloc[0]
    assert top["signature_factor"] > 0.8 and "PMF" in top["evidence"]
    assert "E1" in res.output and "CL001" in res.output
    layers = {str(n) for n in pyogrio.list_layers(out / folder.SOURCES_GPKG)[:, 0]}
    assert {"clusters", "candidate_links", "confirm"} <= layers
    summary = json.loads((out / folder.SOURCES_JSON).read_text(encoding="utf-8"))
    assert summary["n_clusters"] == 1 and summary["permutations"] == 99
    again = cli("sources", gpkg, "--sources", ent, "--crs", CRS, "-o", out)
    assert again.exit_code == 2 and "already exists" in again.output


def test_sources_refuses_rivers_that_are_not_lines(cli, tmp_path):
    gpkg, ent = _county(tmp_path)
    rivers = tmp_path / "rivers.gpkg"
    write_gpkg_layers(rivers, {"rivers": gpd.GeoDataFrame(
        {"名称": ["湖"]}, geometry=[shapely.box(X0, Y0, X0 + 10, Y0 + 10)], crs=CRS)})
    out = tmp_path / "out"
    res = cli("sources", gpkg, "--sources", ent, "--crs", CRS, "--rivers", rivers, "-o", out)
    assert res.exit_code == 2
    errors = [ln for ln in res.output.splitlines() if ln.startswith("farmland: error:")]
    assert len(errors) == 1 and "rivers.gpkg" in errors[0]
    assert "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_sources_needs_the_samples_layer(cli, tmp_path):
    parcels = make_parcels(final_class=[3, 1, 1])
    gpkg = tmp_path / "classification.gpkg"
    write_gpkg_layers(gpkg, {"parcels": parcels})
    ent = tmp_path / "e.gpkg"
    write_gpkg_layers(ent, {"e": make_points([(0, 0)], name="E", metals="cd")})
    res = cli("sources", gpkg, "--sources", ent, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "samples" in res.output and "Traceback" not in res.output
