"""Interactive, self-contained, offline HTML maps (folium/Leaflet)."""

from farmland.maps.page import make_map, save_map

__all__ = ["make_map", "save_map"]
