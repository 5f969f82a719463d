"""Inlined assets that make a farmland map work from one HTML file, offline.

A default folium page loads Leaflet, jQuery, Bootstrap, Font Awesome and
awesome-markers from CDNs and draws nothing without a network. farmland maps use
only Leaflet (plus a small runtime of their own, :data:`RUNTIME_JS`), so the page
carries Leaflet's JS and CSS inline, with the images the CSS refers to turned into
``data:`` URIs. Nothing here touches the network.
"""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path

import xstatic.pkg.leaflet as xs_leaflet
import xstatic.pkg.leaflet_markercluster as xs_cluster

#: URLs that appear inside Leaflet's own source text without loading anything:
#: the SVG namespace and the "Leaflet" link of the attribution control.
LEAFLET_INERT_URLS = frozenset({"http://www.w3.org/2000/svg", "https://leafletjs.com"})

_CSS_IMAGE = re.compile(r"url\((?:'|\")?(images/[\w.-]+\.png)(?:'|\")?\)")


def leaflet_dir() -> Path:
    """Folder holding ``leaflet.js``, ``leaflet.css`` and ``images/`` (xstatic-leaflet)."""
    return Path(xs_leaflet.BASE_DIR)


@functools.cache
def leaflet_js() -> str:
    """Minified Leaflet JavaScript, safe to place inside a ``<script>`` element."""
    text = (leaflet_dir() / "leaflet.js").read_text(encoding="utf-8")
    text = re.sub(r"//# sourceMappingURL=\S+", "", text)
    return _script_safe(text)


@functools.cache
def leaflet_css() -> str:
    """Leaflet CSS with every ``url(images/…png)`` replaced by a ``data:`` URI."""
    text = (leaflet_dir() / "leaflet.css").read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)  # comments (one names a URL)
    return _CSS_IMAGE.sub(lambda m: f'url("{_png_data_uri(m.group(1))}")', text)


@functools.cache
def cluster_js() -> str:
    """Minified Leaflet.markercluster (xstatic-leaflet-markercluster), safe inside
    ``<script>``; it loads nothing and names no URL."""
    text = (Path(xs_cluster.BASE_DIR) / "leaflet.markercluster.js").read_text(encoding="utf-8")
    return _script_safe(re.sub(r"//# sourceMappingURL=\S+", "", text))


@functools.cache
def cluster_css() -> str:
    """The two stylesheets of Leaflet.markercluster (no images, no URLs), comments removed."""
    text = "".join((Path(xs_cluster.BASE_DIR) / name).read_text(encoding="utf-8")
                   for name in ("MarkerCluster.css", "MarkerCluster.Default.css"))
    return re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)


def _png_data_uri(relative: str) -> str:
    data = (leaflet_dir() / relative).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _script_safe(text: str) -> str:
    """Text that cannot close the ``<script>`` element it is placed in."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


#: Page style: clean background when there are no tiles, title/summary box, legend.
PAGE_CSS = """
.leaflet-container { background: #f3f3ee; font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei",
  "Microsoft YaHei", "PingFang SC", sans-serif; }
.fl-box { position: fixed; z-index: 1000; background: rgba(255,255,255,0.93);
  border-radius: 4px; box-shadow: 0 1px 5px rgba(0,0,0,0.4); padding: 6px 10px;
  font: 13px/1.4 "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif; }
.fl-title { top: 10px; left: 56px; max-width: 46%; }
.fl-title h1 { font-size: 16px; margin: 0 0 2px 0; }
.fl-title .fl-sub { color: #555; }
.fl-rate-ok { color: #1b7837; font-weight: bold; }
.fl-rate-low { color: #b2182b; font-weight: bold; }
.fl-legend { bottom: 24px; right: 10px; max-height: 60%; overflow-y: auto; }
.fl-legend summary { font-size: 13px; font-weight: bold; margin: 0 0 4px 0; cursor: pointer; }
.fl-legend table { border-collapse: collapse; }
.fl-legend td { padding: 1px 4px; vertical-align: middle; }
.fl-legend td.fl-num { text-align: right; white-space: nowrap; }
.fl-sw { display: inline-block; width: 14px; height: 14px; border: 1px solid #555; }
.fl-dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
.fl-tip { white-space: normal; width: max-content; max-width: 36em; }
.fl-tip div { padding-left: 1em; text-indent: -1em; }
.fl-tip b { font-weight: 600; }
.fl-label { background: none; border: none; }
.fl-label span { position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
  font: bold 13px/1.2 "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif;
  color: #1a1a1a; text-shadow: 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; }
"""

#: Client-side runtime: decodes the compact layer format written by
#: ``farmland.maps.layers.encode_layer`` and builds Leaflet layers; tooltips and popups
#: are built with ``textContent`` so attribute values can never become markup.
RUNTIME_JS = r"""
(function () {
  "use strict";
  var F = window.farmland = window.farmland || {layers: {}, counts: {}, timing: {}};
  F.timing.runtime = performance.now();

  function decodePoints(d) {
    var xy = d.xy, s = d.s, out = new Array(xy.length / 2), x = 0, y = 0;
    for (var i = 0, k = 0; i < out.length; i++) {
      x += xy[k++]; y += xy[k++];
      out[i] = L.latLng(y / s, x / s);
    }
    return out;
  }

  function decodePolygons(d) {
    var xy = d.xy, rl = d.rl, pr = d.pr, fp = d.fp, s = d.s;
    var k = 0, r = 0, p = 0, x = 0, y = 0, out = new Array(fp.length);
    for (var f = 0; f < fp.length; f++) {
      var polys = [];
      for (var j = 0; j < fp[f]; j++, p++) {
        var rings = [];
        for (var q = 0; q < pr[p]; q++, r++) {
          var n = rl[r], ring = new Array(n);
          for (var v = 0; v < n; v++) {
            x += xy[k++]; y += xy[k++];
            ring[v] = L.latLng(y / s, x / s);
          }
          rings.push(ring);
        }
        polys.push(rings);
      }
      out[f] = polys.length === 1 ? polys[0] : polys;
    }
    return out;
  }

  function decodeLines(d) {
    var xy = d.xy, vl = d.vl, fl = d.fl, s = d.s;
    var k = 0, l = 0, x = 0, y = 0, out = new Array(fl.length);
    for (var f = 0; f < fl.length; f++) {
      var lines = [];
      for (var j = 0; j < fl[f]; j++, l++) {
        var line = new Array(vl[l]);
        for (var v = 0; v < vl[l]; v++) {
          x += xy[k++]; y += xy[k++];
          line[v] = L.latLng(y / s, x / s);
        }
        lines.push(line);
      }
      out[f] = lines.length === 1 ? lines[0] : lines;
    }
    return out;
  }

  function value(col, i) {
    if (col === undefined) { return null; }
    if (Array.isArray(col)) { return col[i]; }
    var j = col.i[i];
    return j === null || j === undefined ? null : col.d[j];
  }

  function format(v, row) {
    if (v === null || v === undefined || v === "") { return null; }
    if (row.f === "bool") { return v ? "是 yes" : "否 no"; }
    if (typeof v === "number") {
      var t = row.d === undefined ? String(v) : v.toFixed(row.d);
      return row.u ? t + " " + row.u : t;
    }
    return String(v);
  }

  // A link row (the county page of an overview unit): a relative path written by farmland,
  // set as an attribute (never markup); anything else than a plain relative path is dropped.
  function linkLine(row, v) {
    if (typeof v !== "string" || !/^[A-Za-z0-9._~%-][A-Za-z0-9._~%\/-]*$/.test(v)) { return null; }
    var line = document.createElement("div"), b = document.createElement("b");
    var a = document.createElement("a");
    b.textContent = row.l + ": ";
    a.setAttribute("href", v);
    a.textContent = row.t || v;
    line.appendChild(b);
    line.appendChild(a);
    return line;
  }

  function tipContent(spec, cols, i) {
    var box = document.createElement("div");
    box.className = "fl-tip";
    spec.tip.forEach(function (row) {
      if (row.f === "link") {
        var link = linkLine(row, value(cols[row.c[0]], i));
        if (link) { box.appendChild(link); }
        return;
      }
      var parts = [];
      row.c.forEach(function (c) {
        var t = format(value(cols[c], i), row);
        if (t !== null) { parts.push(t); }
      });
      if (!parts.length) { return; }
      var line = document.createElement("div"), b = document.createElement("b");
      b.textContent = row.l + ": ";
      line.appendChild(b);
      line.appendChild(document.createTextNode(parts.join(" / ")));
      box.appendChild(line);
    });
    return box;
  }

  function styleOf(spec, cols, i) {
    var st = Object.assign({}, spec.style.base);
    if (spec.style.by) {
      var v = value(cols[spec.style.by], i);
      var key = v === null || v === undefined ? "null" : String(v);
      Object.assign(st, spec.style.map[key] || spec.style.map["null"] || {});
    }
    return st;
  }

  // Leaflet's canvas hit test counts the inside of a polygon even without fill: an
  // outline (township, zone, flag) would catch the hover of every parcel inside it.
  function onOutline(p) { return L.Polyline.prototype._containsPoint.call(this, p, true); }

  // A thin line (candidate links) is hard to hover within half its weight: 4 px either side.
  function lineTolerance() { return Math.max(4, (this.options.weight || 1) / 2); }

  F.data = function (id) {
    var el = document.getElementById(id), parts = JSON.parse(el.textContent);
    el.textContent = "";  // free the text
    return parts;
  };

  // Dense point layers (spec.cluster) go into a Leaflet.markercluster group: clusters with
  // their count at low zoom, the points themselves from spec.cluster.disableClusteringAtZoom.
  if (L.MarkerClusterGroup) {
    L.CircleMarker.include({  // markercluster hides and shows markers with these
      clusterHide: function () { this.setStyle({opacity: 0, fillOpacity: 0}); return this; },
      clusterShow: function () { this.setStyle(this._flStyle || {}); return this; }
    });
  }

  F.layer = function (key, spec, parts) {
    var clustered = !!(spec.cluster && L.markerClusterGroup);
    var group = clustered ? L.markerClusterGroup(spec.cluster) : L.featureGroup();
    var n = 0, t0 = performance.now(), members = [];
    parts.forEach(function (data) {
      var geoms = data.kind === "point" ? decodePoints(data)
        : data.kind === "line" ? decodeLines(data) : decodePolygons(data);
      for (var i = 0; i < data.n; i++) {
        var st = styleOf(spec, data.cols, i);
        var lyr = data.kind === "point" ? L.circleMarker(geoms[i], st)
          : data.kind === "line" ? L.polyline(geoms[i], st) : L.polygon(geoms[i], st);
        if (data.kind === "polygon" && st.fill === false) { lyr._containsPoint = onOutline; }
        if (data.kind === "line") { lyr._clickTolerance = lineTolerance; }
        lyr._flCols = data.cols;
        lyr._flIndex = i;
        lyr._flStyle = st;
        members.push(lyr);
      }
      n += data.n;
    });
    if (clustered) { group.addLayers(members); } else { members.forEach(group.addLayer, group); }
    var content = function (layer) { return tipContent(spec, layer._flCols, layer._flIndex); };
    group.bindTooltip(content, {sticky: true, direction: "auto"});
    group.bindPopup(content, {maxWidth: 480});  // .fl-tip wraps at 36 em (468 px)
    // a popup says what the tooltip says: no tooltip over it while it is open
    group.on("popupopen", function () { group._flPopup = true; group.closeTooltip(); });
    group.on("popupclose", function () { group._flPopup = false; });
    group.on("tooltipopen", function () { if (group._flPopup) { group.closeTooltip(); } });
    group.on("mouseover", function (e) {
      e.layer.setStyle({weight: (e.layer._flStyle.weight || 1) + 1.5, color: "#000", opacity: 1});
      if (e.layer.bringToFront) { e.layer.bringToFront(); }
    });
    group.on("mouseout", function (e) { e.layer.setStyle(e.layer._flStyle); });
    group._flSpec = spec;
    F.layers[key] = group;
    F.counts[key] = n;
    if (clustered) { F.clustered = (F.clustered || []).concat([key]); }
    F.timing[key] = [t0, performance.now()];
    return group;
  };

  // Township names: text labels (textContent, never HTML) in their own pane above the
  // features, without pointer events; shown only around the fitted (county) zoom.
  F.labels = function (map, spec, data) {
    if (!map.getPane("flLabels")) {
      var pane = map.createPane("flLabels");
      pane.style.zIndex = 450;
      pane.style.pointerEvents = "none";
    }
    var pts = decodePoints(data), group = L.layerGroup();
    for (var i = 0; i < data.n; i++) {
      var span = document.createElement("span");
      span.textContent = data.t[i];
      group.addLayer(L.marker(pts[i], {
        icon: L.divIcon({className: "fl-label", html: span, iconSize: null}),
        pane: "flLabels", interactive: false, keyboard: false}));
    }
    F.labelSpec = spec;
    F.labelLayer = group;
    F.counts.labels = data.n;
    return group;
  };

  function showLabels(map) {
    var pane = map.getPane("flLabels");
    if (!pane || F.fitZoom === undefined) { return; }
    var z = map.getZoom(), s = F.labelSpec;
    F.labelsShown = z >= F.fitZoom - s.out && z <= F.fitZoom + s.in;
    pane.style.display = F.labelsShown ? "" : "none";
  }

  // Extra style from zoom levels on (parcel outlines, larger sample dots), cumulative.
  function restyle(map) {
    var z = map.getZoom();
    Object.keys(F.layers).forEach(function (key) {
      var group = F.layers[key], steps = group._flSpec.style.zoomed, level = 0;
      steps.forEach(function (step) { if (z >= step.minZoom) { level++; } });
      if (level === group._flLevel) { return; }
      group._flLevel = level;
      group.eachLayer(function (l) {
        var st = styleOf(group._flSpec, l._flCols, l._flIndex);
        for (var i = 0; i < level; i++) { Object.assign(st, steps[i].style); }
        l._flStyle = st;
        l.setStyle(st);
      });
    });
  }

  F.ready = function (map) {
    F.map = map;
    F.fitZoom = map.getZoom();
    F.timing.ready = performance.now();
    Object.keys(F.layers).forEach(function (key) { F.layers[key]._flLevel = 0; });
    map.on("zoomend", function () { restyle(map); showLabels(map); });
    map.on("baselayerchange", function (e) {  // overview: a new theme is drawn last, on top
      var lines = F.layers.county_lines;
      if (lines && map.hasLayer(lines)) { lines.bringToFront(); }
      var key = Object.keys(F.layers).filter(function (k) { return F.layers[k] === e.layer; })[0];
      var theme = key ? key.slice(key.indexOf("_") + 1) : null;  // county_rate -> rate
      document.querySelectorAll("[data-fl-theme]").forEach(function (row) {  // its legend
        row.style.display = row.getAttribute("data-fl-theme") === theme ? "" : "none";
      });
    });
    restyle(map);
    showLabels(map);
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { F.drawnAt = performance.now(); });
    });
  };
})();
"""


def inline_head(*, cluster: bool = False) -> str:
    """The ``<head>`` block of a farmland map: Leaflet CSS/JS, page CSS, runtime; with
    ``cluster``, Leaflet.markercluster as well (before the runtime, which looks for it)."""
    extra = (f"<style>{cluster_css()}</style>\n<script>{cluster_js()}</script>\n"
             if cluster else "")
    return (
        f"<style>{leaflet_css()}</style>\n<style>{PAGE_CSS}</style>\n"
        f"<script>{leaflet_js()}</script>\n{extra}<script>{_script_safe(RUNTIME_JS)}</script>\n"
    )
