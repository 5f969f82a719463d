"""A directed river and irrigation network: what lies downstream of an outfall, and how far.

Rivers and canals come as lines digitised upstream → downstream (the vertex order is the
flow direction, :func:`farmland.io.read_rivers`). :class:`FlowNetwork` densifies every line
to nodes at most ``step`` metres apart and joins them with directed edges weighted by
their length. Lines meet where a tributary's last node lies within ``snap`` metres of
another line (the tributary flows into it) or where a canal's first node lies within
``snap`` of a river (the canal takes water from it); no other crossing is a junction, so a
canal bridged over a river does not exchange water with it.

Network distances come from :func:`scipy.sparse.csgraph.dijkstra` on a sparse graph, one
search per source (outfall), cut at ``max_distance``; nothing is O(n²) in the number of
nodes. All coordinates are in the lines' metric CRS (metres).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from farmland.crs import require_metric

__all__ = ["FlowNetwork", "Reach"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reach:
    """The network below one outfall.

    Attributes
    ----------
    outfall
        Node index where the source discharges (the network node nearest to it).
    offset_m
        Straight distance from the source to that node (metres).
    distance
        Network distance (metres) from the outfall to every node, ``inf`` where a node is
        not downstream (or beyond the search limit).
    predecessor
        Node before each node on its shortest downstream path (-9999 where none).
    """

    outfall: int
    offset_m: float
    distance: np.ndarray
    predecessor: np.ndarray

    def downstream(self) -> np.ndarray:
        """Indices of the nodes downstream of the outfall (the outfall included)."""
        return np.flatnonzero(np.isfinite(self.distance))

    def path_to(self, node: int) -> np.ndarray:
        """Node indices from the outfall down to ``node`` (empty if not downstream)."""
        if not np.isfinite(self.distance[node]):
            return np.empty(0, dtype=int)
        path = [node]
        while path[-1] != self.outfall:
            path.append(int(self.predecessor[path[-1]]))
        return np.asarray(path[::-1])


class FlowNetwork:
    """Directed network of river and canal lines.

    Parameters
    ----------
    lines
        Rivers and canals, LineStrings in a metric CRS, vertex order = flow direction;
        ``name`` and ``kind`` columns are used in reports when present.
    step
        Largest distance between two nodes along a line (metres).
    snap
        Largest gap (metres) between a line's end (or a canal's start) and the line it joins.
    """

    def __init__(self, lines: gpd.GeoDataFrame, *, step: float = 100.0, snap: float = 50.0):
        require_metric(lines)
        self.crs = lines.crs
        self.step, self.snap = float(step), float(snap)
        geoms = shapely.segmentize(lines.geometry.to_numpy(), step)
        coords, line_of = shapely.get_coordinates(geoms, return_index=True)
        self.xy = coords[:, :2]
        self.line_of = line_of
        names = lines["name"] if "name" in lines else lines.index.astype(str)
        self.line_names = np.asarray(names.astype(str))
        self.tree = cKDTree(self.xy)
        self._node_tree: shapely.STRtree | None = None
        self.graph = self._graph(line_of)
        log.info("flow network: %d line(s), %d node(s), %d junction(s)", len(lines),
                 len(self.xy), self._n_junctions)

    def _graph(self, line_of: np.ndarray):
        n = len(self.xy)
        same = line_of[1:] == line_of[:-1]
        src = np.flatnonzero(same)
        dst = src + 1
        w = np.hypot(*(self.xy[dst] - self.xy[src]).T)
        first = np.flatnonzero(np.r_[True, ~same])
        last = np.r_[first[1:] - 1, n - 1]
        j_src, j_dst, j_w = [], [], []
        for end, into in ((last, True), (first, False)):
            for node in end:
                other = self._nearest_other_line(node)
                if other is None:
                    continue
                gap = float(np.hypot(*(self.xy[other] - self.xy[node])))
                j_src.append(node if into else other)
                j_dst.append(other if into else node)
                j_w.append(gap)
        self._n_junctions = len(j_src)
        src, dst = np.r_[src, j_src].astype(int), np.r_[dst, j_dst].astype(int)
        # dijkstra treats an explicit 0 as "no edge": keep coincident nodes 1 mm apart
        w = np.maximum(np.r_[w, j_w], 1e-3)
        # a line ending where the next begins is found from both ends: one edge, not two
        _, keep = np.unique(np.c_[src, dst], axis=0, return_index=True)
        keep = np.sort(keep)
        return coo_matrix((w[keep], (src[keep], dst[keep])), shape=(n, n)).tocsr()

    def _nearest_other_line(self, node: int) -> int | None:
        """Nearest node of another line within ``snap`` of ``node``, if any."""
        near = self.tree.query_ball_point(self.xy[node], self.snap)
        near = [k for k in near if self.line_of[k] != self.line_of[node]]
        if not near:
            return None
        d = np.hypot(*(self.xy[near] - self.xy[node]).T)
        return int(near[int(np.argmin(d))])

    def reach(self, x: float, y: float, *, max_offset: float = 2_000.0,
              max_distance: float = np.inf) -> Reach | None:
        """The network below a source at (``x``, ``y``): it discharges into the nearest node.

        Returns None when no node lies within ``max_offset`` metres (the source is not on
        this network).
        """
        offset, node = self.tree.query([x, y])
        if not np.isfinite(offset) or offset > max_offset:
            return None
        dist, pred = dijkstra(self.graph, directed=True, indices=int(node),
                              limit=max_distance, return_predecessors=True)
        return Reach(int(node), float(offset), dist, pred)

    def nodes_near(self, geoms: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (geometry index, node index) with the node within ``distance`` metres."""
        if self._node_tree is None:
            self._node_tree = shapely.STRtree(shapely.points(self.xy))
        g, k = self._node_tree.query(geoms, predicate="dwithin", distance=distance)
        return g, k

    def line_name(self, node: int) -> str:
        """Name of the line a node belongs to."""
        return str(self.line_names[self.line_of[node]])
