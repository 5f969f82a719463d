"""Reading county data (parcels, samples, crops, measures, sources, townships; rivers,
outfalls, geology and wind roses for source apportionment) and writing outputs atomically.

Every reader takes a path *or* an in-memory (Geo)DataFrame and applies the same column
aliases, value parsing and checks (:mod:`farmland.io.readers`).
"""

from farmland.io.readers import (
    concat_sample_files,
    read_crop_samples,
    read_mapping,
    read_measures,
    read_parcels,
    read_soil_samples,
    read_sources,
    read_townships,
)
from farmland.io.source_layers import read_geology, read_outfalls, read_rivers, read_wind_rose
from farmland.io.styles import style_qml, write_styles
from farmland.io.write import atomic_write, sha256_file, write_gpkg_layers

__all__ = [
    "atomic_write", "concat_sample_files", "read_crop_samples", "read_geology", "read_mapping", "read_measures",
    "read_outfalls", "read_parcels", "read_rivers", "read_soil_samples", "read_sources",
    "read_townships", "read_wind_rose", "sha256_file", "style_qml", "write_gpkg_layers",
    "write_styles",
]
