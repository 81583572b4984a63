"""Fixes for faust-streaming 0.15's consumer and table recovery, installed by the worker at start.

A record can reach a stream twice: Faust's fetch loop passes a record whose offset equals the
partition's last read offset, which happens after a seek back to the committed offset (after
recovery, after a rebalance). The second copy is tracked as "waiting for its ack", but
`Consumer.ack` ignores it while the first copy's offset is acknowledged and not yet committed,
so it is never marked done. From then on the consumer waits for it before every rebalance
(`wait_empty`: "Waiting for tasks ... offset=N"), forever: the worker stops taking part in
its group and the others cannot take over (seen in tests/test_scale_out.py and
test_intake_exact.py on a loaded machine). The intake recognises the copy as a duplicate by
its event id either way; what must not happen is the wait.

The copies also reach the list of acknowledged offsets from which Faust computes the next
commit: a copy acknowledged while a commit is in flight is appended after its offset was
taken out of the index, so the list then holds offsets twice, and offsets below the
committed one. Faust's commit takes the first run of consecutive numbers of that list, and
with duplicates in it the run ends at the first repeat: the commit stays where it is while
the partition is read to its end (seen: committed 211, read 367, 194 offsets waiting).

`install_redelivered_ack_fix` makes an acknowledged message leave the waiting set whatever
`Consumer.ack` decided about its offset, and makes the commit read the acknowledged offsets
once each, without those already committed.

The same wait can hang on a message that no stream will ever acknowledge for other reasons:
a message still referenced somewhere (seen: one `territory.state` record, refcount 1, held
for minutes by a worker whose planner and intake were idle, in tests/test_scale_out.py with
two tests running at once) keeps its place in Faust's weak set of unacknowledged messages.
`install_bounded_rebalance_wait` keeps Faust's wait for as long as one of the worker's
batches is being worked on (`core.producing.batches_in_hand`), and gives up on the rest
once none has been for `settle_s`: longer than a batch waits to fill, so whatever a stream
had buffered was handed over and applied by then. What it gives up on was not applied; its
offset is not committed, and whoever owns the partition next reads it again.

After a rebalance Faust resumes the fetching of the input partitions before it seeks them to
their committed offsets (`Recovery.on_recovery_completed`; the flow itself was resumed already,
to read the changelogs). The fetcher hands the streams records from wherever the client stood,
then the seek moves the read offset back, and the rest of the batch fetched before the seek
arrives as a jump: Faust takes the offsets it skipped for a gap in the log (as compaction
leaves) and commits them unread, and drops the records when they come again. Events were lost
for good, a few per partition, on a hand-over (seen in tests/test_scale_out.py and
test_crash.py, now and then: Faust noted a gap of sales.activities[0] 929..946 right after
"Seek stream partitions to committed offsets", having handed over 928..941 just before).
`install_seek_before_resume` defers resuming the stream partitions until the seek is done,
and runs the app's `territory_position_guards` (async callables taking the consumer) in
between: the planner's seeks back to what its checkpoint applied.
"""

from __future__ import annotations

import gc
import logging
from time import monotonic
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer

from core.producing import batches_in_hand

log = logging.getLogger(__name__)

_original_on_recovery_completed = Recovery.on_recovery_completed
_original_ack = Consumer.ack
_original_new_offset = Consumer._new_offset
#: Seconds without a batch in hand after which a rebalance stops waiting (set at install).
_settle_s = 10.0


def _ack(self: Any, message: Any) -> bool:
    counted = _original_ack(self, message)
    # Acknowledged now or before: it is no longer in flight, even if its offset was not counted.
    self._unacked_messages.discard(message)
    return counted


def _new_offset(self: Any, tp: Any) -> int | None:
    acked = self._acked[tp]
    if acked:
        committed = self._committed_offset[tp]
        acked[:] = sorted({offset for offset in acked if committed is None or offset >= committed})
    return _original_new_offset(self, tp)


def install_redelivered_ack_fix() -> None:
    """Idempotent; for the whole process."""
    Consumer.ack = _ack  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]


async def _wait_empty(self: Any) -> None:
    """Faust's `Consumer.wait_empty` (faust-streaming 0.15.3), bounded as the module says."""
    idle_since: float | None = None
    while not self.should_stop and self._unacked_messages:
        gc.collect()  # Faust's own step: messages nobody holds any more leave the weak set
        await self.commit()
        if not self._unacked_messages:
            break
        await self._wait_for_ack(timeout=1)
        self._clean_unacked_messages()
        if batches_in_hand():
            idle_since = None
            continue
        idle_since = monotonic() if idle_since is None else idle_since
        if self._unacked_messages and monotonic() - idle_since >= _settle_s:
            stuck = sorted(f"{m.topic}[{m.partition}]@{m.offset}" for m in list(self._unacked_messages))
            log.warning(
                "rebalance: not waiting for %d unacknowledged messages that no batch holds (%s): "
                "they were not applied and are read again by the partition's next owner",
                len(stuck),
                ", ".join(stuck[:5]) + (" ..." if len(stuck) > 5 else ""),
            )
            break
    await self.commit_and_end_transactions()


def install_bounded_rebalance_wait(settle_s: float) -> None:
    """Idempotent; for the whole process (the last `settle_s` given counts)."""
    global _settle_s
    _settle_s = settle_s
    Consumer.wait_empty = _wait_empty  # type: ignore[method-assign]


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """Faust's `Recovery.on_recovery_completed`, with the stream partitions resumed only once
    they are seeked to their committed offsets (see the module docstring)."""
    consumer = self.app.consumer
    resume, seek = consumer.resume_partitions, consumer.perform_seek
    deferred: list[Any] = []

    async def seek_then_resume() -> None:
        await seek()
        for guard in getattr(self.app, "territory_position_guards", ()):
            await guard(consumer)  # may seek a partition further back (planner.agents)
        for partitions in deferred:
            resume(partitions)
        deferred.clear()

    consumer.resume_partitions, consumer.perform_seek = deferred.append, seek_then_resume
    try:
        await _original_on_recovery_completed(self, generation_id)
    finally:
        del consumer.resume_partitions, consumer.perform_seek  # the class's methods again
        for partitions in deferred:  # nothing was assigned, so nothing was seeked
            resume(partitions)


def install_seek_before_resume() -> None:
    """Idempotent; for the whole process."""
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
