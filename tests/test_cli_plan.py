"""``farmland plan``: field-team exports and the plan effect, with the field of
test_sampling.py; the variogram it takes from the run's manifest."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import X0, Y0
from test_sampling import field_case

from farmland.cli.plan import fitted_variogram
from farmland.errors import InputError
from farmland.io.write import write_gpkg_layers
from farmland.sampling.flag_areas import read_flagged_area


def test_cli_plan_writes_exports_and_effect(cli, tmp_path):
    parcels, samples, sources = field_case()
    gpkg = tmp_path / "classification.gpkg"
    write_gpkg_layers(gpkg, {"parcels": parcels, "samples": samples})
    src = tmp_path / "sources.gpkg"
    write_gpkg_layers(src, {"sources": sources})
    out = tmp_path / "plan"
    res = cli("plan", gpkg, "--n", "8", "--sources", src, "-o", out)
    assert res.exit_code == 0, res.output
    for name in ("plan.csv", "plan.gpx", "plan.kml", "plan.gpkg", "plan_effect.csv"):
        assert (out / name).exists(), name
    effect = pd.read_csv(out / "plan_effect.csv", encoding="utf-8-sig")
    assert effect["township"].tolist() == ["T1", "T2", "全县 County"]
    assert effect["n_new"].iloc[-1] == 8
    county = effect.iloc[-1]
    # the printed/written expected figures are the planner's own: the benefits add up
    plan = pd.read_csv(out / "plan.csv", encoding="utf-8-sig")
    benefit = plan["预计减少错分(亩) expected_benefit_mu"]
    assert county["misclassified_mu_before"] - county["misclassified_mu_after"] == (
        pytest.approx(benefit.sum(), abs=1e-3))
    assert 0 < county["class_change_mu"] <= county["farmland_mu"]
    assert "8 point(s)" in res.output
    again = cli("plan", gpkg, "--n", "8", "-o", out)
    assert again.exit_code == 2 and "already exists" in again.output


def test_plan_places_coverage_points_in_the_flags_it_is_given(cli, tmp_path):
    parcels, samples, sources = field_case()
    gpkg = tmp_path / "classification.gpkg"
    write_gpkg_layers(gpkg, {"parcels": parcels, "samples": samples})
    assert cli("flag", gpkg, "-o", tmp_path / "flags").exit_code == 0
    coverage = ("--n", "6", "--mode", "coverage")
    # the flags `farmland flag` wrote with its defaults are those the plan computes itself
    own = cli("plan", gpkg, *coverage, "-o", tmp_path / "own")
    given = cli("plan", gpkg, *coverage, "--flags", tmp_path / "flags" / "flags.gpkg",
                "-o", tmp_path / "given")
    assert own.exit_code == given.exit_code == 0, own.output + given.output
    for name in ("plan.csv", "plan_effect.csv"):
        assert (tmp_path / "own" / name).read_bytes() == (tmp_path / "given" / name).read_bytes()
    # flags of the east quarter only (as `farmland flag --cell-size ...` could have
    # drawn them): every coverage point lies there
    east = shapely.box(X0 + 2250, Y0, X0 + 3000, Y0 + 3000)
    write_gpkg_layers(tmp_path / "east.gpkg", {
        "empty_cells": gpd.GeoDataFrame(geometry=[east], crs=parcels.crs)})
    res = cli("plan", gpkg, *coverage, "--flags", tmp_path / "east.gpkg", "-o", tmp_path / "east")
    assert res.exit_code == 0, res.output
    plan = gpd.read_file(tmp_path / "east" / "plan.gpkg", layer="plan").to_crs(parcels.crs)
    assert len(plan) == 6
    assert plan.geometry.x.min() >= X0 + 2250 and plan.geometry.x.max() <= X0 + 3000
    before = gpd.read_file(tmp_path / "own" / "plan.gpkg", layer="plan").to_crs(parcels.crs)
    assert before.geometry.x.min() < X0 + 2250   # without that file they spread west too
    # a file holding no flag layer is refused in one line naming it
    src = tmp_path / "sources.gpkg"
    write_gpkg_layers(src, {"sources": sources})
    bad = cli("plan", gpkg, "--flags", src, "-o", tmp_path / "bad")
    assert bad.exit_code == 2 and "no flag layer" in bad.output and "sources.gpkg" in bad.output
    assert not (tmp_path / "bad" / "plan.csv").exists()
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a GeoPackage")
    bad = cli("plan", gpkg, "--flags", junk, "-o", tmp_path / "bad")
    assert bad.exit_code == 2 and "cannot open the file" in bad.output
    assert "junk.gpkg" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad" / "plan.csv").exists()


def test_flags_file_crop_points_become_their_parcels(tmp_path):
    parcels, _, _ = field_case()
    box = shapely.box(X0, Y0, X0 + 100, Y0 + 100)
    crop = gpd.GeoDataFrame({"parcel_id": [parcels["parcel_id"].iloc[3]]},
                            geometry=[parcels.geometry.iloc[3].representative_point()],
                            crs=parcels.crs)
    path = tmp_path / "flags.gpkg"
    write_gpkg_layers(path, {"empty_cells": gpd.GeoDataFrame(geometry=[box], crs=parcels.crs),
                             "crop_exceedance_class1": crop})
    area = read_flagged_area(path, parcels)
    assert len(area) == 2
    assert area.geometry.iloc[0].equals(box)
    assert area.geometry.iloc[1].equals(parcels.geometry.iloc[3])
    bad = tmp_path / "bad.gpkg"
    write_gpkg_layers(bad, {"crop_exceedance_class1": crop.drop(columns="parcel_id")})
    with pytest.raises(InputError, match="no parcel_id"):
        read_flagged_area(bad, parcels)


def test_plan_cli_takes_the_fitted_variogram_of_the_main_driver(tmp_path):
    """The kriging-variance update uses the fitted model of the metal driving most
    class-2/3 area, from the run's manifest.json."""
    models = {"cd": {"model": "spherical", "nugget": 0.1, "sill": 1.0, "range_m": 5000.0,
                     "text": "cd"},
              "as": {"model": "exponential", "nugget": 0.0, "sill": 0.5, "range_m": 800.0,
                     "text": "as"},
              "pb": {"method": "LocalKriging", "fallback": "pure nugget"}}
    (tmp_path / "manifest.json").write_text(json.dumps({"geostatistics": {"models": models}}))
    parcels = pd.DataFrame({"final_class": pd.array([2, 3, 1, 2], dtype="Int8"),
                            "driving_element": ["as", "as", None, "cd"],
                            "area_mu": [10.0, 5.0, 100.0, 12.0]})
    # As drives 15 亩 of class 2/3, Cd 12 亩 -> the As variogram
    model = fitted_variogram(str(tmp_path), parcels)
    assert (model.name, model.range_) == ("exponential", 800.0)
    # Pb drives most but fell back to IDW: the next driver with a model, else Cd
    parcels.loc[:, "driving_element"] = ["pb", "pb", None, "pb"]
    assert fitted_variogram(str(tmp_path), parcels).range_ == 5000.0
    (tmp_path / "idw_run").mkdir()   # a run folder without a manifest
    assert fitted_variogram(str(tmp_path / "idw_run"), parcels) is None
