"""Great-circle distances between accounts and rep home bases.

The rebalancer only needs "how far is this account from that rep's home", to rank
candidate reps and to enforce ``Rep.max_travel_km``. Straight-line (haversine) distance
is the usual proxy in territory planning; road distance would need a routing service.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "haversine_matrix_km"]

#: Mean Earth radius (IUGG), in kilometres.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees.

    Parameters
    ----------
    lat1, lon1
        Latitude and longitude of the first point, in degrees.
    lat2, lon2
        Latitude and longitude of the second point, in degrees.

    Examples
    --------
    Paris to London:

    >>> round(haversine_km(48.8566, 2.3522, 51.5074, -0.1278), 1)
    343.6
    >>> haversine_km(45.0, 7.0, 45.0, 7.0)
    0.0
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    # min() guards asin against h drifting a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def haversine_matrix_km(
    lats: ArrayLike, lons: ArrayLike, other_lats: ArrayLike, other_lons: ArrayLike
) -> NDArray[np.float64]:
    """Distances in km from every point of the first set (rows) to every point of the
    second (columns); the vectorised form of :func:`haversine_km`.

    Examples
    --------
    >>> haversine_matrix_km([48.8566], [2.3522], [51.5074, 48.8566], [-0.1278, 2.3522]).round(1)
    array([[343.6,   0. ]])
    """
    phi1 = np.radians(np.asarray(lats, dtype=np.float64))[:, None]
    lam1 = np.radians(np.asarray(lons, dtype=np.float64))[:, None]
    phi2 = np.radians(np.asarray(other_lats, dtype=np.float64))[None, :]
    lam2 = np.radians(np.asarray(other_lons, dtype=np.float64))[None, :]
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
