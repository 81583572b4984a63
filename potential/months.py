"""Month arithmetic of the potential model: "YYYY-MM" keys, datetimes and ISO times as
month indices (year x 12 + month - 1, UTC) and back."""

from __future__ import annotations

from datetime import datetime, timezone

_MONTH_CACHE: dict[str, int] = {}


def _month_idx(key: str) -> int:
    idx = _MONTH_CACHE.get(key)
    if idx is None:
        idx = _MONTH_CACHE[key] = int(key[:4]) * 12 + int(key[5:7]) - 1
    return idx


def _idx_of(moment: datetime) -> int:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.year * 12 + moment.month - 1


def _iso_idx(iso: str) -> int:
    """Month index of an ISO time stored by monitor.state (always UTC there)."""
    if iso.endswith("+00:00") or iso.endswith("Z"):
        return int(iso[:4]) * 12 + int(iso[5:7]) - 1
    return _idx_of(datetime.fromisoformat(iso))


def _key_of(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def _month_start(idx: int) -> datetime:
    return datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)
