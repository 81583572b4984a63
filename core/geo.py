"""Great-circle (haversine) distances, the one definition every stage uses: the rebalancer
(how far an account is from a rep's home, to rank candidates and enforce ``Rep.max_travel_km``),
the local shock detector (zones of neighbouring cells), the planner (a shock area's radius)
and the simulator. Straight-line distance is the usual proxy in territory planning; road
distance would need a routing service.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["EARTH_RADIUS_KM", "haversine_array_km", "haversine_km", "haversine_matrix_km"]

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


def haversine_array_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    """:func:`haversine_km` over numpy arrays, broadcasting all four arguments (degrees).

    >>> haversine_array_km(48.8566, 2.3522, [51.5074, 48.8566], [-0.1278, 2.3522]).round(1)
    array([343.6,   0. ])
    """
    phi1, phi2 = np.radians(np.asarray(lat1, dtype=np.float64)), np.radians(np.asarray(lat2, dtype=np.float64))
    dlambda = np.radians(np.asarray(lon2, dtype=np.float64)) - np.radians(np.asarray(lon1, dtype=np.float64))
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def haversine_matrix_km(
    lats: ArrayLike, lons: ArrayLike, other_lats: ArrayLike, other_lons: ArrayLike
) -> NDArray[np.float64]:
    """Distances in km from every point of the first set (rows) to every point of the
    second (columns).

    Examples
    --------
    >>> haversine_matrix_km([48.8566], [2.3522], [51.5074, 48.8566], [-0.1278, 2.3522]).round(1)
    array([[343.6,   0. ]])
    """
    column = lambda values: np.asarray(values, dtype=np.float64)[:, None]  # noqa: E731
    row = lambda values: np.asarray(values, dtype=np.float64)[None, :]  # noqa: E731
    return haversine_array_km(column(lats), column(lons), row(other_lats), row(other_lons))
