"""Two fixes for faust-streaming 0.15's consumer, installed by the worker at start.

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
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_original_ack = Consumer.ack
_original_new_offset = Consumer._new_offset


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
