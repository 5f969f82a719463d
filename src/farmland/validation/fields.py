"""Random fields and pollution shapes for the synthetic counties (EPSG:4545 metres).

Everything here is a pure function of its arguments and a ``numpy.random.Generator``:
the same generator state gives the same arrays.

* :func:`gaussian_field` — a stationary standard-normal field on a regular grid by
  spectral (FFT) synthesis with an exponential covariance ``exp(-r / scale)``
  (practical range ``3 * scale``). The grid is padded by three scales before the FFT,
  so the periodic wrap-around of the FFT does not correlate opposite edges.
* :func:`plume_deposition` — ground deposition downwind of a stack: a Gaussian plume
  whose cross-wind spread grows with distance and whose along-wind profile peaks
  ``peak_m`` downwind, plus fugitive dust around the plant.
* :func:`band_along_line` — an irrigation band: a load that decays along a channel
  from its intake and falls off across it with a soft edge.
* :class:`Grid` — the truth grid: cell centres and bilinear look-up at points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage

__all__ = ["Grid", "band_along_line", "gaussian_field", "logistic", "plume_deposition"]


@dataclass(frozen=True)
class Grid:
    """A north-up grid of square cells.

    Attributes
    ----------
    x0, y0
        Lower-left corner of the lower-left cell, metres.
    cell
        Cell side, metres.
    nx, ny
        Number of columns and rows; arrays on the grid have shape ``(ny, nx)`` with
        row 0 at the bottom (``y0``).
    """

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], cell: float) -> Grid:
        """The smallest grid of ``cell`` m aligned to multiples of ``cell`` covering ``bounds``."""
        minx, miny, maxx, maxy = bounds
        x0, y0 = np.floor(minx / cell) * cell, np.floor(miny / cell) * cell
        nx = int(np.ceil((maxx - x0) / cell))
        ny = int(np.ceil((maxy - y0) / cell))
        return cls(float(x0), float(y0), float(cell), nx, ny)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ny, self.nx

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` arrays of shape :attr:`shape` with the cell-centre coordinates."""
        xs = self.x0 + (np.arange(self.nx) + 0.5) * self.cell
        ys = self.y0 + (np.arange(self.ny) + 0.5) * self.cell
        return np.meshgrid(xs, ys)

    def at(self, values: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of grid ``values`` at ``xy`` (n, 2); edges held constant."""
        col = (np.asarray(xy)[:, 0] - self.x0) / self.cell - 0.5
        row = (np.asarray(xy)[:, 1] - self.y0) / self.cell - 0.5
        return ndimage.map_coordinates(values, [row, col], order=1, mode="nearest")


def gaussian_field(rng: np.random.Generator, grid: Grid, scale: float) -> np.ndarray:
    """A standard-normal random field on ``grid`` with covariance ``exp(-r / scale)``.

    Parameters
    ----------
    rng
        Source of randomness (one white-noise draw of the padded grid).
    grid
        Target grid (metres).
    scale
        Correlation scale in metres; the practical (95 %) range is ``3 * scale``.

    Returns
    -------
    numpy.ndarray
        Shape ``grid.shape``, standardised to mean 0 and standard deviation 1 over the grid.
    """
    pad = int(np.ceil(3 * scale / grid.cell))
    ny, nx = grid.ny + pad, grid.nx + pad
    ky = np.fft.fftfreq(ny, d=grid.cell)
    kx = np.fft.rfftfreq(nx, d=grid.cell)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    # 2-D spectral density of the exponential covariance (up to a constant)
    amplitude = (1.0 + (2 * np.pi * scale) ** 2 * k2) ** -0.75
    noise = rng.standard_normal((ny, nx))
    field = np.fft.irfft2(np.fft.rfft2(noise) * amplitude, s=(ny, nx))[: grid.ny, : grid.nx]
    return (field - field.mean()) / field.std()


def logistic(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), clipped against overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def plume_deposition(x: np.ndarray, y: np.ndarray, source: tuple[float, float],
                     wind_to_deg: float, *, peak_m: float, spread0_m: float = 80.0,
                     spread_rate: float = 0.18, dust_m: float = 180.0,
                     dust_share: float = 0.4) -> np.ndarray:
    """Relative deposition (0–1) around a stack; 1 at the plume peak.

    Parameters
    ----------
    x, y
        Coordinates (metres) where deposition is wanted.
    source
        Stack position (metres).
    wind_to_deg
        Direction the wind blows *towards*, degrees clockwise from north.
    peak_m
        Downwind distance of the deposition maximum on the plume axis.
    spread0_m, spread_rate
        Cross-wind standard deviation ``spread0_m + spread_rate * s`` at ``s`` m downwind.
    dust_m, dust_share
        Fugitive dust: an isotropic Gaussian of ``dust_m`` m around the plant with
        ``dust_share`` of the peak.

    Returns
    -------
    numpy.ndarray
        ``f(s) * exp(-d² / 2σ(s)²) + dust``, with ``f(s) = (s / peak) e^(1 - s / peak)``
        downwind (0 upwind), ``s`` along-wind and ``d`` cross-wind distance.
    """
    theta = np.deg2rad(wind_to_deg)
    ux, uy = np.sin(theta), np.cos(theta)
    dx, dy = np.asarray(x) - source[0], np.asarray(y) - source[1]
    along = dx * ux + dy * uy
    across = dx * uy - dy * ux
    s = np.maximum(along, 0.0)
    sigma = spread0_m + spread_rate * s
    profile = np.where(along > 0, (s / peak_m) * np.exp(1.0 - s / peak_m), 0.0)
    plume = profile * np.exp(-0.5 * (across / sigma) ** 2)
    dust = dust_share * np.exp(-0.5 * (dx**2 + dy**2) / dust_m**2)
    return plume + dust


def band_along_line(x: np.ndarray, y: np.ndarray, line: shapely.LineString, *,
                    width_m: float, edge_m: float, decay_m: float) -> np.ndarray:
    """Relative load (0–1) of an irrigation band along ``line`` (intake at its start).

    ``exp(-c / decay_m) * logistic((width_m - d) / edge_m)``: ``c`` is the distance along
    the channel from the intake (of the nearest point of the channel), ``d`` the distance
    from the channel. Fields farther than ``width_m`` get little of the channel water.
    """
    pts = shapely.points(np.asarray(x).ravel(), np.asarray(y).ravel())
    dist = shapely.distance(pts, line)
    chain = shapely.line_locate_point(line, pts)
    load = np.exp(-chain / decay_m) * logistic((width_m - dist) / edge_m)
    return load.reshape(np.shape(x))
