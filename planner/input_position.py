"""Where the planner reads its input from: never past what its checkpoint has applied.

The planner's checkpoint says up to which offset of each state-topic partition it has
applied the records (`PlanningSession.input_offsets`). The consumer group's committed offset
should never be past that (the checkpoint is on the broker before a batch is acknowledged),
yet the crash test found it so: a worker killed in its first seconds, before its planner had
applied a single batch, left the group's offset at 1171, and the next worker's planner began
there and never saw the reps at the start of the topic. (Faust commits the first run of
acknowledged offsets when nothing was committed before, however far it starts from the
beginning; the owner mirror acknowledges the same records on its own. Which records were
acknowledged without the planner was not traced.) So the first record after every (re)start
or rebalance is compared with the checkpoint: if it lies beyond, the consumer goes back to
the checkpoint's offset, and the records fetched before that seek are skipped until the
re-read catches up. Records read twice are harmless (the planner keeps the newest snapshot
and counts an order once); records never read are not.

>>> position = InputPosition()
>>> position.admit("state:0", 40, resume_at=0)   # nothing applied yet, the group says 40
'seek'
>>> position.admit("state:0", 41, resume_at=0)   # fetched before the seek: read again later
'skip'
>>> position.admit("state:0", 0, resume_at=0), position.admit("state:0", 1, resume_at=0)
('apply', 'apply')
>>> position.admit("state:0", 5, resume_at=0)    # a jump ahead: applied, and logged by the caller
'jump'
>>> position.restart(); position.admit("state:0", 3, resume_at=7)  # at or before the checkpoint: fine
'apply'
>>> position.restart(); position.admit("state:0", 90, resume_at=7)
'seek'
>>> position.admit("state:0", 60, resume_at=7)   # the log now starts at 60 (retention): from there
'apply'
"""

from __future__ import annotations

from typing import Literal

Decision = Literal["apply", "jump", "seek", "skip"]


class InputPosition:
    """Per partition: the offset expected next, and whether a seek back is under way."""

    def __init__(self) -> None:
        self._expected: dict[str, int] = {}
        self._seeking_from: dict[str, int] = {}  # partition -> first offset seen before the seek

    def restart(self) -> None:
        """A (re)start or rebalance: the next record of every partition is checked again."""
        self._expected.clear()
        self._seeking_from.clear()

    def admit(self, partition: str, offset: int, *, resume_at: int) -> Decision:
        """What to do with the record at `offset`: apply it ("jump": apply it, though records
        before it were not seen), seek the partition back to `resume_at` (the checkpoint's next
        offset) and drop this one, or drop it as fetched before that seek."""
        if partition in self._seeking_from:
            if offset >= self._seeking_from[partition]:
                return "skip"
            # Below where the first fetch began: the re-read (retention may have moved the log
            # start past `resume_at`, so whatever comes first now is where it starts).
            del self._seeking_from[partition]
            self._expected[partition] = offset + 1
            return "apply"
        expected = self._expected.get(partition)
        if expected is None and offset > resume_at:
            self._seeking_from[partition] = offset
            return "seek"
        self._expected[partition] = offset + 1
        return "jump" if expected is not None and offset > expected else "apply"

    def next_offsets(self) -> dict[str, int]:
        """Per partition, the offset after the last record admitted."""
        return dict(self._expected)
