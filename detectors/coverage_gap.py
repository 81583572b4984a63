"""Coverage gap: accounts whose rep left, or that have no rep at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import CompanyCoverage
from monitor.state import AccountState, RepState, trailing_sum

#: Shown in a signal's evidence at most (the count says how many there are).
MAX_ACCOUNT_IDS = 20
#: The group of accounts that never had a rep.
NO_REP = "(none)"


@dataclass(frozen=True)
class CoverageGapFinding:
    """A rep's accounts lost their owner (`open`), or every one of them has one again (`cleared`)."""

    rep_id: str
    state: str
    accounts: tuple[str, ...]  # account ids without an active rep, sorted
    potential: float  # their sales over the window
    rep_status: str  # "inactive" (the rep left) or "unknown rep" (never announced)
    detected_at: datetime


class CoverageGapDetector:
    """Groups the accounts without an active owner by the rep they had, and finds a gap when a
    group appears and when it empties. Closed and not yet announced accounts do not count. A
    rep id never announced counts only after the warm-up: at start-up accounts often arrive
    before their reps.

    The planner places the accounts of every open gap (`orphans`) before it judges balance.

    >>> from datetime import timezone
    >>> from monitor.state import RepState
    >>> now = datetime(2025, 5, 2, tzinfo=timezone.utc)
    >>> accounts = [AccountState("a1", 48.1, 11.5, rep_id="R1", monthly_sales={"2025-04": 500.0}, known=True),
    ...             AccountState("a2", 48.2, 11.6, rep_id="R2", known=True)]
    >>> reps = [RepState("R1", 48.1, 11.5, active=False), RepState("R2", 48.2, 11.6)]
    >>> detector = CoverageGapDetector()
    >>> coverage = CompanyCoverage(accounts, reps, now, datetime(2025, 4, 30, 23, 59, tzinfo=timezone.utc), 12, True)
    >>> [(f.rep_id, f.state, f.accounts, f.potential) for f in detector.observe(coverage)]
    [('R1', 'open', ('a1',), 500.0)]
    >>> detector.signal(detector.observe(CompanyCoverage(accounts[1:], reps, now, now, 12, True))[0], now).state
    'cleared'
    """

    name = kind = "coverage_gap"
    states = ("open", "cleared")
    observes = CompanyCoverage
    triggers_rebalance = False  # it asks for a placement of the orphans instead (see the planner)

    def __init__(self) -> None:
        self._gap_reps: set[str] = set()
        self.orphans: frozenset[str] = frozenset()  # accounts without an active rep, as last observed

    def observe(self, observation: CompanyCoverage) -> list[CoverageGapFinding]:
        active = {rep.rep_id for rep in observation.reps if rep.active}
        announced = {rep.rep_id for rep in observation.reps}
        by_missing_rep: dict[str, list[AccountState]] = {}
        for account in observation.accounts:
            if not account.known or account.closed or account.rep_id in active:
                continue
            if account.rep_id is None or account.rep_id in announced or observation.warmed_up:
                by_missing_rep.setdefault(account.rep_id or NO_REP, []).append(account)
        findings = [
            self._finding(rep_id, by_missing_rep[rep_id], announced, observation)
            for rep_id in sorted(set(by_missing_rep) - self._gap_reps)
        ]
        findings += [
            self._finding(rep_id, [], announced, observation) for rep_id in sorted(self._gap_reps - set(by_missing_rep))
        ]
        self._gap_reps = set(by_missing_rep)
        self.orphans = frozenset(account.account_id for group in by_missing_rep.values() for account in group)
        return findings

    @staticmethod
    def _finding(
        rep_id: str, orphans: list[AccountState], announced: set[str], observation: CompanyCoverage
    ) -> CoverageGapFinding:
        potential = sum(
            trailing_sum(account.monthly_sales, observation.through, observation.window_months) for account in orphans
        )
        return CoverageGapFinding(
            rep_id,
            "open" if orphans else "cleared",
            tuple(sorted(account.account_id for account in orphans)),
            round(potential, 2),
            "inactive" if rep_id in announced else "unknown rep",
            observation.watermark,
        )

    def signal(self, finding: CoverageGapFinding, emitted_at: datetime) -> Signal:
        """An open gap is critical: customers have nobody."""
        subject = Subject("rep", finding.rep_id)
        evidence = {
            "accounts_without_rep": len(finding.accounts),
            "potential": finding.potential,
            "rep_status": finding.rep_status,
            "account_ids": list(finding.accounts[:MAX_ACCOUNT_IDS]),
        }
        return Signal.make(
            kind=self.kind,
            state=finding.state,
            severity="critical" if finding.state == "open" else "info",
            subject=subject,
            evidence=evidence,
            detected_at=finding.detected_at,
            emitted_at=emitted_at,
            summary=summary(subject, finding.state, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal as it makes them (docs/EVENTS.md lists its evidence)."""
        now = datetime(2025, 6, 1, tzinfo=timezone.utc)
        account = AccountState("a1", 48.0, 11.0, rep_id="R1", known=True)
        coverage = CompanyCoverage([account], [RepState("R1", 48.0, 11.0, active=False)], now, now, 12, True)
        (finding,) = CoverageGapDetector().observe(coverage)
        return self.signal(finding, now)

    def open_subjects(self) -> int:
        return len(self._gap_reps)

    def state_dict(self) -> dict[str, Any]:
        return {"gap_reps": sorted(self._gap_reps)}

    def load_state_dict(self, state: Mapping[str, Any]) -> "CoverageGapDetector":
        self._gap_reps = set(state.get("gap_reps", []))
        return self


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "coverage gap: 3 accounts of R1 without an active rep (potential 12,000)".

    >>> summary(Subject("rep", "R1"), "open", {"accounts_without_rep": 1, "potential": 500.0})
    'coverage gap: 1 account of R1 without an active rep (potential 500)'
    """
    if state in RESOLVED_STATES:
        return f"coverage gap of {subject.label} closed: every account has an active rep"
    count = int(evidence.get("accounts_without_rep") or 0)
    potential = evidence.get("potential")
    worth = f" (potential {float(potential):,.0f})" if potential is not None else ""
    return f"coverage gap: {count} account{'s' if count != 1 else ''} of {subject.label} without an active rep{worth}"
