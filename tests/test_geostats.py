"""Cross-validation report written with every run: figures checked by hand with IDW."""

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from farmland.geostats import cross_validation_report, write_rasters
from farmland.interpolate import IDW
from farmland.standards import load_standard

X0, Y0 = 600_000.0, 2_700_000.0


def corners():
    """Four paddy samples on a 100 m square, pH 6 (Cd screening 0.4); Cd 1.0 at one corner."""
    xy = [(0, 0), (100, 0), (0, 100), (100, 100)]
    cd = [0.2, 0.2, 0.2, 1.0]
    return gpd.GeoDataFrame(
        {"sample_id": ["A", "B", "C", "D"], "ph": 6.0, "cd": cd, "hg": 0.1, "as": 5.0,
         "pb": 20.0, "cr": 50.0, "usable": True, "landuse_used": "paddy"},
        geometry=[Point(X0 + x, Y0 + y) for x, y in xy], crs="EPSG:4545")


def idw(_variable):
    return IDW(k=12, power=2.0)


def test_leave_one_out_figures_by_hand():
    metrics, per_sample, models = cross_validation_report(corners(), idw, standard=load_standard())
    cd = metrics.set_index("variable").loc["cd"]
    # weights 1/d²: sides 1e-4, diagonal 5e-5 (sum 2.5e-4)
    # A: (0.2e-4 + 0.2e-4 + 1.0·5e-5) / 2.5e-4 = 0.36   (obs 0.2, both class 1)
    # B, C: (0.2e-4 + 1.0e-4 + 0.2·5e-5) / 2.5e-4 = 0.52 (obs 0.2 class 1, pred class 2)
    # D: 0.2 (obs 1.0 class 2, pred class 1)
    pred = per_sample[per_sample["variable"] == "cd"].set_index("sample_id")["predicted"]
    assert pred.to_dict() == pytest.approx({"A": 0.36, "B": 0.52, "C": 0.52, "D": 0.2})
    assert cd["me"] == pytest.approx(0.0, abs=1e-12)          # 0.16 + 0.32 + 0.32 - 0.8
    assert cd["rmse"] == pytest.approx(np.sqrt(0.8704 / 4))   # (0.0256+0.1024·2+0.64)/4
    assert cd["class_accuracy"] == pytest.approx(0.25)        # only A
    assert cd["n"] == 4
    assert models["cd"]["method"] == "IDW"
    assert list(metrics["variable"]) == ["ph", "cd", "hg", "as", "pb", "cr"]


def test_unusable_samples_are_left_out():
    s = corners()
    s.loc[3, "usable"] = False
    metrics, _, _ = cross_validation_report(s, idw, standard=load_standard())
    assert metrics.set_index("variable").loc["cd", "n"] == 3


def test_rasters_are_written(tmp_path):
    import rasterio

    parcels = corners().buffer(30)
    parcels = gpd.GeoDataFrame(geometry=parcels, crs="EPSG:4545")
    files = write_rasters(tmp_path, corners(), parcels, idw, standard=load_standard(),
                          cell_size=20.0)
    assert len(files) == 15
    with rasterio.open(tmp_path / "cd_p_exceed_screening.tif") as src:
        assert src.crs.to_epsg() == 4545
        prob = src.read(1)
    # IDW gives no distribution: the probability is 0 or 1 (value above 0.4 or not)
    assert set(np.unique(prob)) <= {0.0, 1.0}
