"""Where the planner reads its input from: never past what its checkpoint has applied.

The planner's checkpoint says up to which offset of each state-topic partition it has
applied the records (`PlanningSession.input_offsets`). The consumer group's committed offset
should never be past that (the checkpoint is on the broker before a batch is acknowledged),
yet the crash test found it so: a worker killed in its first seconds, before its planner had
applied a single batch, left the group's offset at 1171, and the next worker's planner began
there and never saw the reps at the start of the topic. (Faust commits the first run of
acknowledged offsets when nothing was committed before, however far from the beginning it
starts; the owner mirror acknowledges the same records on its own. Which records were
acknowledged without the planner was not traced.) So after every (re)start or rebalance, once
Faust has sought the partitions to the committed offsets and before they are fetched again,
the planner seeks back to its checkpoint's offset where the committed one lies beyond
(`territory.faust_fixes`). Records read twice are harmless (the planner keeps the newest
snapshot and counts an order once); records never read are not.

>>> seek_back_to(committed=1171, applied=0)      # nothing applied yet: from the start
0
>>> seek_back_to(committed=900, applied=950) is None   # the usual case: the checkpoint is ahead
True
>>> seek_back_to(committed=None, applied=0) is None    # nothing committed: Faust reads from the start
True
"""

from __future__ import annotations


def seek_back_to(committed: int | None, applied: int) -> int | None:
    """The offset to read a partition from instead of the group's `committed` one, or None to
    keep it; `applied` is the offset after the last record the checkpoint applied (0: none)."""
    return applied if committed is not None and committed > applied else None
