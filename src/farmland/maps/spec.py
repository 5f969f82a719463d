"""How one layer of a farmland map looks: :class:`LayerSpec`, held as data.

The specs of the classification overlays are in :data:`farmland.maps.layers.LAYER_SPECS`,
those of the strict-control closed loop in :data:`farmland.maps.control.CONTROL_SPECS`, those
of the contamination sources in :data:`farmland.maps.causes.CAUSE_SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LayerSpec"]


@dataclass(frozen=True)
class LayerSpec:
    """How one overlay looks.

    Attributes
    ----------
    name
        Bilingual name shown in the layer control and the legend.
    base
        Leaflet path options shared by every feature.
    by
        Column whose value picks extra options from ``styles`` (client side).
    styles
        Value (as text; ``"null"`` for missing) → extra Leaflet options.
    tip
        Tooltip rows ``(label, columns, format)``; a row shows when any of its
        columns exists and has a value; several columns are joined by " / ".
    symbol
        Legend symbol: ``"dot"``, ``"classdots"`` (one dot per class colour), ``"line"``,
        ``"fill"`` (class table), ``"flows"`` (flow table of a change map) or
        ``"swatches"`` (one swatch per value of ``styles``, e.g. the loop statuses) or
        ``"dots"`` (one dot per value of ``styles``, e.g. the confirmation modes).
    zoomed
        Steps ``(z, options)`` in increasing ``z``: extra options from zoom ``z`` on,
        cumulative (parcel outlines appear, sample dots grow as features get larger
        on screen).
    cluster
        A point layer that may be dense (soil and crop samples, planned points): above
        :data:`farmland.maps.layers.CLUSTER_MIN_POINTS` points it is drawn clustered
        (counts at low zoom, the points from the parcel scale on).
    """

    name: str
    base: dict[str, object]
    tip: tuple[tuple[str, tuple[str, ...], str], ...]
    by: str | None = None
    styles: dict[str, dict[str, object]] = field(default_factory=dict)
    symbol: str = "dot"
    zoomed: tuple[tuple[int, dict[str, object]], ...] = ()
    cluster: bool = False
