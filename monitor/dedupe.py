"""The event ids an account (or a rep) has applied, kept in its own state row.

A message is a duplicate when its `event_id` was applied before. The ids live in the same
row as the effect they guard (one changelog record, written once per batch), so no crash
can keep one without the other. They are kept as 16 hex digits of their SHA-256 (ids may be
200 characters long; a 64-bit digest makes a false "duplicate" among an account's ids a
chance of about one in 10^11 at 20,000 ids), grouped by input topic and event day, so
that days beyond the late horizon can be dropped: an event that old is dead-lettered
`too_late` anyway (or, for a profile upsert, is last-writer-wins and changes nothing), and
the memory grows with the accounts, not with their history.

The groups are one flat mapping keyed "topic day" (a Kafka topic name has no spaces): a
dictionary per topic inside each row cost about 400 bytes an account.

>>> seen = {}
>>> remember(seen, "territory.orders", "2025-03-01", digest("o-1"))
>>> was_seen(seen, digest("o-1")), was_seen(seen, digest("o-2"))
(True, False)
>>> prune(seen, {"territory.orders": "2025-03-02"}.get); seen
{}
>>> flat({"territory.orders": {"2025-03-01": "ab12"}})  # a row written before this layout
{'territory.orders 2025-03-01': 'ab12'}
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, Callable, Mapping

#: "topic day" (ISO date) -> space-separated digests.
Seen = dict[str, str]


def digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def was_seen(seen: Seen, event_digest: str) -> bool:
    # Every digest is 16 hex digits between spaces: a match inside the text is a whole one.
    return any(event_digest in ids for ids in seen.values())


def remember(seen: Seen, topic: str, day: str, event_digest: str) -> None:
    key = sys.intern(f"{topic} {day}")  # one copy per topic and day in the process, not per row
    seen[key] = f"{seen[key]} {event_digest}" if key in seen else event_digest


def prune(seen: Seen, oldest_day: Callable[[str], str | None]) -> None:
    """Drop the days before `oldest_day(topic)` (a topic without one keeps everything)."""
    cutoffs: dict[str, str | None] = {}
    for key in list(seen):
        topic, _, day = key.partition(" ")
        if topic not in cutoffs:
            cutoffs[topic] = oldest_day(topic)
        cutoff = cutoffs[topic]
        if cutoff is not None and day < cutoff:
            del seen[key]


def flat(seen: Mapping[str, Any] | None) -> Seen:
    """`seen` as read back from a changelog or store: rows written before the flat layout
    hold {topic: {day: digests}}."""
    out: Seen = {}
    for key, value in (seen or {}).items():
        if isinstance(value, dict):
            out.update((sys.intern(f"{key} {day}"), ids) for day, ids in value.items())
        else:
            out[sys.intern(key)] = value
    return out
