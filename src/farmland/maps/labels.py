"""Township name labels of a farmland map.

A label is placed at the pole of inaccessibility (centre of the largest inscribed
circle) of the township's largest polygon when a townships layer is given; otherwise
on the township's own parcel whose centroid is nearest to the area-weighted mean
centroid of its parcels, so a label never falls on a neighbour or in a hole. The names
reach the page as JSON text and become labels through ``textContent`` (never HTML); the
runtime shows them between :data:`ZOOMS_OUT` levels out and :data:`ZOOMS_IN` levels in
from the fitted view (county scale), hidden beyond.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template

from farmland.maps.layers import COORD_SCALE, to_script_json

#: labels show from this many zoom levels out of the fitted view …
ZOOMS_OUT = 1
#: … to this many levels in (parcel scale: the labels would hide parcels)
ZOOMS_IN = 3
#: layer-control name of the labels
NAME = "乡镇名称 Township names"


def _names(values: pd.Series) -> pd.Series:
    text = values.astype(object)
    ok = text.notna() & (text.astype(str).str.strip() != "")
    return text.where(ok).map(lambda v: v if v is None or pd.isna(v) else str(v).strip())


def township_label_points(parcels: gpd.GeoDataFrame | None,
                          townships: gpd.GeoDataFrame | None, crs: object) -> gpd.GeoDataFrame:
    """One point per township name, in ``crs`` (metric), column ``township``.

    From ``townships`` (its ``township`` column) when given and named, else from the
    ``township`` column of ``parcels``; empty when neither has names.
    """
    if townships is not None and "township" in townships and len(townships):
        points = _from_polygons(townships.to_crs(crs))
        if len(points):
            return points
    if parcels is not None and "township" in parcels and len(parcels):
        return _from_parcels(parcels.to_crs(crs))
    return gpd.GeoDataFrame({"township": []}, geometry=[], crs=crs)


def _from_polygons(towns: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    names = _names(towns["township"])
    parts, idx = shapely.get_parts(towns.geometry.to_numpy(), return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    parts, idx = parts[polygonal], idx[polygonal]
    frame = pd.DataFrame({"township": names.to_numpy()[idx], "area": shapely.area(parts),
                          "k": np.arange(len(parts))}).dropna(subset=["township"])
    best = frame.sort_values(["township", "area"], ascending=[True, False], kind="stable")
    best = best.drop_duplicates("township")
    chosen = parts[best["k"].to_numpy()]
    tol = np.maximum(np.sqrt(shapely.area(chosen)) / 100.0, 1.0)
    circles = shapely.maximum_inscribed_circle(chosen, tol)
    centres = shapely.get_point(circles, 0)
    return gpd.GeoDataFrame({"township": best["township"].to_numpy()}, geometry=centres,
                            crs=towns.crs)


def _from_parcels(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geoms = parcels.geometry.to_numpy()
    cent = shapely.get_coordinates(shapely.centroid(geoms))
    frame = pd.DataFrame({"township": _names(parcels["township"]).to_numpy(),
                          "a": np.maximum(shapely.area(geoms), 1e-9),
                          "x": cent[:, 0], "y": cent[:, 1], "k": np.arange(len(geoms))})
    frame = frame.dropna(subset=["township"])
    frame["ax"], frame["ay"] = frame["a"] * frame["x"], frame["a"] * frame["y"]
    sums = frame.groupby("township", sort=True)[["a", "ax", "ay"]].sum()
    mean = sums[["ax", "ay"]].div(sums["a"], axis=0)
    frame = frame.join(mean.rename(columns={"ax": "mx", "ay": "my"}), on="township")
    frame["d2"] = (frame["x"] - frame["mx"]) ** 2 + (frame["y"] - frame["my"]) ** 2
    best = frame.sort_values(["township", "d2"], kind="stable").drop_duplicates("township")
    points = shapely.point_on_surface(geoms[best["k"].to_numpy()])
    return gpd.GeoDataFrame({"township": best["township"].to_numpy()}, geometry=points,
                            crs=parcels.crs)


class LabelLayer(Layer):
    """Township names as text labels, a toggleable layer shown at county zoom."""

    _template = Template("""
        {% macro html(this, kwargs) %}
            <script type="application/json" id="{{ this.get_name() }}_data">{{ this.data_json }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = farmland.labels({{ this._parent.get_name() }},
                {{ this.spec_json }}, farmland.data("{{ this.get_name() }}_data"));
        {% endmacro %}
    """)

    def __init__(self, points: gpd.GeoDataFrame, name: str = NAME) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "farmland_labels"
        xy = shapely.get_coordinates(points.geometry.to_crs(4326).to_numpy())
        q = np.round(xy * COORD_SCALE).astype(np.int64)
        deltas = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel().tolist()
        self.n_features = len(points)
        self.names = [str(t) for t in points["township"]]
        self.data_json = to_script_json({"n": len(points), "s": COORD_SCALE, "xy": deltas,
                                         "t": self.names})
        self.spec_json = to_script_json({"out": ZOOMS_OUT, "in": ZOOMS_IN})


def add_labels(fmap: MacroElement, parcels: gpd.GeoDataFrame | None,
               townships: gpd.GeoDataFrame | None, crs: object) -> LabelLayer | None:
    """Add the township labels to ``fmap`` (nothing when no township has a name)."""
    points = township_label_points(parcels, townships, crs)
    if points.empty:
        return None
    layer = LabelLayer(points)
    layer.add_to(fmap)
    return layer
