"""Where the planner reads its input from: never past what its checkpoint has applied.

The planner's checkpoint says up to which offset of each state-topic partition it has
applied the records (`PlanningSession.input_offsets`). Where it starts reading after a
(re)start was left to the consumer group: the committed offset, or the client's reset to the
log's beginning when nothing is committed. The crash test found that reset wrong: after a
worker killed in its first seconds, before its planner had applied a batch, the next
worker's planner began reading a fresh state topic at offset 429 (another run: 1171) with
nothing committed, and never saw the reps at its start. Why the reset landed there was not
traced (the embedded broker answers ListOffsets wrongly in other cases, docs/ARCHITECTURE.md).
And a committed offset beyond the checkpoint must not be trusted either: Faust commits the
first run of acknowledged offsets when nothing was committed before, however far from the
beginning it starts. So after every (re)start or rebalance, once Faust has sought the
partitions to the committed offsets and before they are fetched again, the planner seeks to
its checkpoint's offset when nothing is committed or the committed one lies beyond
(`territory.faust_fixes`). Records read twice are harmless (the planner keeps the newest
snapshot and counts an order once); records never read are not.

>>> seek_back_to(committed=1171, applied=0)      # nothing applied yet: from the start
0
>>> seek_back_to(committed=900, applied=950) is None   # the usual case: the checkpoint is ahead
True
>>> seek_back_to(committed=None, applied=0)   # nothing committed: from the start, said explicitly
0
"""

from __future__ import annotations


def seek_back_to(committed: int | None, applied: int) -> int | None:
    """The offset to read a partition from instead of the group's `committed` one, or None to
    keep it; `applied` is the offset after the last record the checkpoint applied (0: none).
    With nothing committed the offset is given explicitly too, not left to the client's reset."""
    return applied if committed is None or committed > applied else None
