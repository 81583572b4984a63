"""The event ids an account (or a rep) has applied, kept in its own state row.

A message is a duplicate when its `event_id` was applied before. The ids live in the same
row as the effect they guard (one changelog record, written once per batch), so no crash
can keep one without the other. They are kept as 16 hex digits of their SHA-256 (ids may be
200 characters long; a 64-bit digest makes a false "duplicate" among an account's ids a
chance of about one in 10^11 at 20,000 ids), grouped by input topic and by event day, so
that days beyond the late horizon can be dropped: an event that old is dead-lettered
`too_late` anyway (or, for a profile upsert, is last-writer-wins and changes nothing), and
the memory grows with the accounts, not with their history.

>>> seen = {}
>>> remember(seen, "territory.orders", "2025-03-01", digest("o-1"))
>>> was_seen(seen, digest("o-1")), was_seen(seen, digest("o-2"))
(True, False)
>>> prune(seen, {"territory.orders": "2025-03-02"}); seen
{}
"""

from __future__ import annotations

import hashlib
from typing import Mapping

#: topic -> event day (ISO date) -> space-separated digests.
Seen = dict[str, dict[str, str]]


def digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def was_seen(seen: Seen, event_digest: str) -> bool:
    # Every digest is 16 hex digits between spaces: a match inside the text is a whole one.
    return any(event_digest in ids for days in seen.values() for ids in days.values())


def remember(seen: Seen, topic: str, day: str, event_digest: str) -> None:
    days = seen.setdefault(topic, {})
    days[day] = f"{days[day]} {event_digest}" if day in days else event_digest


def prune(seen: Seen, oldest_day: Mapping[str, str]) -> None:
    """Drop the days before `oldest_day[topic]` (topics not named keep everything)."""
    for topic, cutoff in oldest_day.items():
        days = seen.get(topic)
        if not days:
            continue
        for day in [day for day in days if day < cutoff]:
            del days[day]
        if not days:
            del seen[topic]
