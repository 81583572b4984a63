"""docs/benchmarks/load.md from bench/results/load.json (written by bench/load.py)."""

from __future__ import annotations

from typing import Any

from core.settings import Settings

DEFAULTS = Settings()

# The targets of the load benchmark: throughput against the bare Faust peer, scaling to two
# workers, records per event and a replay of a million events.
TARGET_PIPELINE_OVER_PEER = 1.5  # whole pipeline, one worker, against the bare Faust peer
TARGET_INTAKE_OVER_PEER = 2.0  # intake alone, one worker, against the peer
TARGET_TWO_OVER_ONE_PER_CPU_SECOND = 0.75  # events per worker CPU-second, two workers against one
TARGET_PLANNER_RECORDS_PER_EVENT = 1.0  # at most one record per changed account per batch
TARGET_REPLAY_EVENTS = 1_000_000  # replayed by one worker ...
TARGET_REPLAY_SECONDS = 300.0  # ... in at most 5 minutes
TARGET_RSS_MIB_100K = 700.0
TARGET_RSS_MIB_1M = 3 * 1024.0
TARGET_EVENT_TO_SIGNAL_MEDIAN_S = 5.0

NOT_MEASURED = "not measured in this run"

# Measured before the intake took events in batches (same machine); not re-measured since.
EARLIER_FIGURES = {
    "debug_logging_share_of_worker_cpu_at_log_level_warning": 0.112,
}


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mib(value: float) -> str:
    return f"{value:,.1f} MiB"


def _line(target: str, figures: str, ok: bool | None) -> str:
    return f"- {target}: {figures} - {_met(ok)}"


def _runs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    tp = results.get("throughput") or {}
    return [(name, tp[key]) for name, key in (("1 worker", "workers_1"), ("2 workers", "workers_2")) if tp.get(key)]


def _ratio_target(results: dict[str, Any], key: str, what: str, target: float) -> str:
    """`key` of each run against the peer; judged on the one-worker run."""
    label = f"{what} >= {_fmt(target)} x the bare Faust peer (1 worker)"
    figures = [(name, run.get(key)) for name, run in _runs(results) if run.get(key) is not None]
    one = next((value for name, value in figures if name == "1 worker"), None)
    if not figures:
        return _line(label, NOT_MEASURED, None)
    shown = ", ".join(f"{_fmt(value)} ({name})" for name, value in figures)
    return _line(label, shown, None if one is None else one >= target)


def targets(results: dict[str, Any]) -> list[str]:
    """The lines of the "## Targets" section: `- <target>: <figures> - met|missed|n/a`."""
    lines = [
        _ratio_target(results, "pipeline_over_peer", "pipeline", TARGET_PIPELINE_OVER_PEER),
        _ratio_target(results, "intake_over_peer", "intake", TARGET_INTAKE_OVER_PEER),
    ]

    label = f"two workers: events per worker CPU-second >= {_fmt(TARGET_TWO_OVER_ONE_PER_CPU_SECOND)} x one worker's"
    ratio = (results.get("throughput") or {}).get("two_over_one_per_cpu_second")
    lines.append(
        _line(label, NOT_MEASURED, None)
        if ratio is None
        else _line(label, _fmt(ratio), ratio >= TARGET_TWO_OVER_ONE_PER_CPU_SECOND)
    )

    label = (
        "the planner applies at most one record per changed account per batch "
        f"(records applied per input event <= {_fmt(TARGET_PLANNER_RECORDS_PER_EVENT)})"
    )
    figures = [
        (name, run["planner_records_per_event"])
        for name, run in _runs(results)
        if run.get("planner_records_per_event") is not None
    ]
    lines.append(
        _line(
            label,
            ", ".join(f"{_fmt(value)} ({name})" for name, value in figures),
            all(value <= TARGET_PLANNER_RECORDS_PER_EVENT for _, value in figures),
        )
        if figures
        else _line(label, NOT_MEASURED, None)
    )

    label = f"{TARGET_REPLAY_EVENTS // 1_000_000}M events replayed by one worker in <= {TARGET_REPLAY_SECONDS / 60:.0f} minutes"
    replay = results.get("replay") or {}
    if replay.get("timed_out_after_s"):
        lines.append(
            _line(label, f"not done within {_fmt(replay['timed_out_after_s'])} s ({replay.get('progress')})", False)
        )
    elif replay.get("events") and replay.get("seconds") is not None:
        events, seconds = replay["events"], replay["seconds"]
        enough = events >= TARGET_REPLAY_EVENTS
        lines.append(
            _line(
                label,
                f"{_fmt(events)} events in {_fmt(seconds)} s" + ("" if enough else " (fewer events than the target)"),
                seconds <= TARGET_REPLAY_SECONDS if enough else None,
            )
        )
    else:
        lines.append(_line(label, NOT_MEASURED, None))

    mem = results.get("memory") or {}
    measured = {p["accounts"]: p["rss_mib"] for p in mem.get("measured", [])}
    extrapolated = {p["accounts"]: p for p in mem.get("extrapolated", [])}
    unsettled = {p["accounts"]: p for p in mem.get("unsettled", [])}
    label = f"memory at 100k accounts <= {_fmt(TARGET_RSS_MIB_100K)} MiB"
    if 100_000 in measured:
        rss = measured[100_000]
        lines.append(_line(label, f"{_mib(rss)} (measured)", rss <= TARGET_RSS_MIB_100K))
    elif 100_000 in extrapolated:
        p = extrapolated[100_000]
        lines.append(
            _line(
                label,
                f"{_mib(p['rss_mib'])} (**extrapolated**, {p['basis']})",
                p["rss_mib"] <= TARGET_RSS_MIB_100K,
            )
        )
    else:
        lines.append(_line(label, NOT_MEASURED, None))
    label = f"memory at 1M accounts, measured, <= {TARGET_RSS_MIB_1M / 1024:.0f} GiB"
    if 1_000_000 in measured:
        rss = measured[1_000_000]
        lines.append(_line(label, f"{_mib(rss)} (measured)", rss <= TARGET_RSS_MIB_1M))
    elif 1_000_000 in unsettled:
        p = unsettled[1_000_000]
        lines.append(
            _line(
                label,
                f"not settled: {_mib(p['rss_mib'])} with {_fmt(p['intake_applied'])} events taken in and the "
                f"planner at {_fmt(p['planner_applied'])} snapshots (a lower bound)",
                False if p["rss_mib"] > TARGET_RSS_MIB_1M else None,
            )
        )
    elif 1_000_000 in extrapolated:
        p = extrapolated[1_000_000]
        lines.append(_line(label, f"not measured; only extrapolated: {_mib(p['rss_mib'])} ({p['basis']})", None))
    else:
        lines.append(_line(label, NOT_MEASURED, None))

    label = f"event -> signal latency median <= {_fmt(TARGET_EVENT_TO_SIGNAL_MEDIAN_S)} s"
    event_to_signal = (results.get("latency") or {}).get("event_to_signal") or {}
    median = event_to_signal.get("median_s")
    lines.append(
        _line(
            label,
            f"{_fmt(median)} s ({event_to_signal.get('samples')} samples)",
            median <= TARGET_EVENT_TO_SIGNAL_MEDIAN_S,
        )
        if median is not None
        else _line(label, NOT_MEASURED, None)
    )
    return lines


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    machine = results.get("machine", {})
    out.append("# Load benchmark\n")
    out.append(
        f"Generated by `bench/load.py` on {results.get('generated_at')} ({machine.get('arch')}, "
        f"{machine.get('cores')} cores, Python {machine.get('python')}, {results.get('seconds')} s). "
        f"Command: `{results.get('command')}`. Raw numbers: `bench/results/load.json`.\n"
    )
    if results.get("note"):
        out.append(f"Note: {results['note'].rstrip('.')}.\n")
    out.append(
        "Every part runs on its own fresh embedded broker (Tansu, in-memory, 127.0.0.1) with "
        "`python -m territory.cli worker` subprocesses and SQLite; input topics have 4 partitions.\n"
    )

    tp = results.get("throughput")
    if tp:
        runs = _runs(results)
        out.append("## Throughput\n")
        out.append(
            f"{_fmt(tp['events'])} simulated events (the first of a company's 24 months: accounts, orders, "
            f"activities, opportunities; mean {tp.get('mean_message_bytes')} bytes). For the raw rate and the "
            "peer they are produced before anything consumes them; the raw rate is an `AIOKafkaConsumer` "
            "reading all of them from the same broker with no processing (the client's ceiling, for "
            "reference). The workers run on a fresh broker: they start, settle in the consumer group (every "
            "input partition assigned, each worker holding some: `territory_worker_assigned_partitions`), "
            "and then the events are produced in one burst. Timing and each worker's CPU count from the "
            "burst, so neither the group join nor a hand-over of partitions between the two workers is "
            "charged to the figures (samples every 0.25 s of `territory_intake_events_total`); *intake* ends "
            "when the workers have counted every input message; *pipeline* ends when the planner "
            "(`territory_planner_updates_total`) has applied the last snapshot. The group's committed "
            "offsets are checked against every input partition's end afterwards.\n"
        )
        out.append(
            "The *peer* (`bench/faust_peer.py`) is the plainest stateful Faust app for the same input: one "
            "agent over the input topics, a JSON decode and one table update per event, nothing else. It "
            "reads the same events from the same broker in the same benchmark run, just before the workers, "
            "and is timed like the intake: from the first sample where its count rises to the one where it has "
            "counted every event. The pipeline is compared with it, not with absolute rates, because "
            "this machine is shared and noisy: rates move between runs, while both sides of a ratio see the "
            "same conditions.\n"
        )
        out.append(
            "CPU is each process's own user and system time (psutil) from the start of timing to the end, "
            "summed over the workers. It is the scale-out measure: the workers share the machine's two cores "
            "with the broker, so a second worker adds no CPU and wall-clock time cannot show scale-out; events "
            "per worker CPU-second, two workers against one, show how much work a second worker adds.\n"
        )
        out.append(
            "| configuration | raw consume (events/s) | peer (events/s) | intake (events/s) | pipeline (events/s) | "
            "pipeline / peer | intake / peer | CPU-s per 1k events (workers' sum) | peer CPU-s per 1k events | "
            "start-up (s) | events timed | committed to the end | RSS (MiB) |"
        )
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, run in runs:
            peer = run.get("peer") or {}
            out.append(
                f"| {name} | {_fmt((run.get('raw_consume') or {}).get('events_per_s'))} | "
                f"{_fmt(peer.get('events_per_s'))} | {_fmt(run.get('intake_events_per_s'))} | "
                f"{_fmt(run.get('pipeline_events_per_s'))} | {_fmt(run.get('pipeline_over_peer'))} | "
                f"{_fmt(run.get('intake_over_peer'))} | {_fmt(run.get('cpu_seconds_per_1k_events'))} | "
                f"{_fmt(peer.get('cpu_seconds_per_1k_events'))} | {_fmt(run.get('startup_s'))} | "
                f"{_fmt(run.get('timed_events'))} | {run.get('committed_at_end')} | "
                f"{', '.join(str(r) for r in run.get('rss_mib', []))} |"
            )
        out.append("")
        summary = [
            f"Two workers / one (wall clock): {_fmt(tp.get('two_over_one'))} for the whole pipeline, "
            f"{_fmt(tp.get('two_over_one_intake'))} for the intake alone"
        ]
        if tp.get("two_over_one_per_cpu_second") is not None:
            summary.append(
                f"events per worker CPU-second, two workers / one: **{_fmt(tp['two_over_one_per_cpu_second'])}** ("
                + ", ".join(f"{_fmt(run.get('events_per_cpu_second'))} with {name}" for name, run in runs)
                + ")"
            )
        for name, run in runs:
            if run.get("cpu_seconds") and len(run["cpu_seconds"]) > 1:
                summary.append(f"CPU-seconds per worker with {name}: {', '.join(_fmt(c) for c in run['cpu_seconds'])}")
            if run.get("events_per_worker") and len(run["events_per_worker"]) > 1:
                summary.append(f"events per worker with {name}: {', '.join(_fmt(e) for e in run['events_per_worker'])}")
        out.append("; ".join(summary) + ".\n")
        out.append(
            "Snapshots on `territory.state`: "
            + ", ".join(
                f"{_fmt(r.get('snapshots_on_state_topic'))} for {_fmt(r.get('events'))} events ({n})" for n, r in runs
            )
            + (
                "; records the planner applied per input event: "
                + ", ".join(f"{_fmt(r['planner_records_per_event'])} ({n})" for n, r in runs)
                if all(r.get("planner_records_per_event") is not None for _, r in runs)
                else ""
            )
            + ". Fewer than events by design: the intake sends one snapshot per changed account (or rep) per "
            "batch, carrying all of the batch's events for it, and an order or activity read before its account "
            "is held and applied when the account arrives. The orders carried by the snapshots: "
            + ", ".join(
                f"{_fmt(r.get('orders_in_snapshots'))} of {_fmt(r.get('order_events'))} order events ({n})"
                for n, r in runs
            )
            + ".\n"
        )

    lat = results.get("latency")
    if lat:
        out.append("## Latency\n")
        out.append(
            f"A simulated company ({_fmt(lat['accounts'])} accounts, 24 months, the demo's market shock: "
            "demand in one region x0.4 from month 14) on one worker. The first 330 days "
            f"({_fmt(lat['bulk_events'])} events) are loaded in bulk and the worker catches up; the remaining "
            f"{_fmt(lat['live_events'])} events are produced live, paced at {lat['live_speed_days_per_s']} "
            f"days of event time per second (about {_fmt(lat['live_events_per_s'])} events/s), across month "
            "ends and the shock.\n"
        )
        out.append(
            "- **event -> signal**: the signal's record timestamp on `territory.signals` minus the wall-clock "
            "send time of the first live event whose `occurred_at` is at or after the signal's `detected_at` "
            "plus the planner's allowed lateness (2 days): the planner judges at its watermark minus the "
            "lateness, so that event is the earliest that could let it judge that moment. It includes the "
            f"intake (and its batch wait, up to {DEFAULTS.intake_batch_s:g} s), the state topic, the planner's "
            f"batch wait (up to `planner_interval_s` = {DEFAULTS.planner_interval_s:g} s) and the judgement."
        )
        out.append(
            "- **signal -> alert (proposal)**: the record timestamp of the alert on `territory.alerts` minus "
            "that of each signal that triggered the proposal (`trigger_signals`); includes the CP-SAT solve "
            "and its trade-off curve."
        )
        out.append("- **proposal -> alert**: alert record timestamp minus proposal record timestamp.")
        out.append(
            "- **signal -> alert (outbox, log sink)**: the first send of each incident (`deliveries.sent_at`) "
            "minus the record timestamp of the incident's first signal; one sample per incident (repeats are "
            "throttled by design).\n"
        )
        out.append("| measure | samples | median (s) | p99 (s) | max (s) |")
        out.append("| --- | --- | --- | --- | --- |")
        for label, key in (
            ("event -> signal", "event_to_signal"),
            ("signal -> alert (proposal on territory.alerts)", "signal_to_alert_via_proposal"),
            ("proposal -> alert", "proposal_to_alert"),
            ("signal -> alert (outbox, log sink)", "signal_to_alert_outbox_log"),
        ):
            s = lat[key]
            out.append(
                f"| {label} | {s['samples']} | {_fmt(s['median_s'])} | {_fmt(s['p99_s'])} | {_fmt(s['max_s'])} |"
            )
        out.append("")
        out.append(
            f"Signals: {lat['signals']} ({', '.join(f'{k} {v}' for k, v in lat['signal_kinds'].items())}); "
            f"{lat['signals_on_bulk_history']} were judged on bulk-loaded history and are not timed; "
            f"proposals: {lat['proposals']}; proposal alerts: {lat['alerts']}. With this few samples the p99 "
            "is close to the maximum.\n"
        )

    replay = results.get("replay")
    if replay:
        out.append("## Replay of a history\n")
        out.append(
            f"{_fmt(replay['events'])} events of a simulated company"
            + (f" ({_fmt(replay['accounts'])} accounts, 24 months)" if replay.get("accounts") else "")
            + " are produced to a fresh broker first; then one worker starts on them, as a new installation "
            "back-fills its history. Timed from the worker's start (start-up and group join included) until "
            "the planner has applied the last snapshot, i.e. judged every day of the history in turn.\n"
        )
        if replay.get("seconds") is not None:
            out.append(
                "| events | seconds | start-up (s) | intake (events/s) | pipeline (events/s) | CPU-s per 1k events | planner records per event | RSS (MiB) |"
            )
            out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
            out.append(
                f"| {_fmt(replay['events'])} | {_fmt(replay['seconds'])} | {_fmt(replay.get('startup_s'))} | "
                f"{_fmt(replay.get('intake_events_per_s'))} | {_fmt(replay.get('pipeline_events_per_s'))} | "
                f"{_fmt(replay.get('cpu_seconds_per_1k_events'))} | {_fmt(replay.get('planner_records_per_event'))} | "
                f"{', '.join(_fmt(r) for r in replay.get('rss_mib', []))} |\n"
            )
        else:
            out.append(f"Not done within {_fmt(replay['timed_out_after_s'])} s: {replay.get('progress')}.\n")

    mem = results.get("memory")
    if mem:
        out.append("## Memory\n")
        out.append(
            f"One worker (intake and planner in one process, as with a single worker), fed synthetic accounts: "
            f"`account.upserted` plus {mem['orders_per_account']} `order.placed` each, in steps. Resident set "
            "size (psutil) after the planner has applied every snapshot of the step. The planner takes up to "
            "20,000 snapshots at a time here (`TERRITORY_PLANNER_BATCH`) or what came in 5 s "
            "(`TERRITORY_PLANNER_INTERVAL_S`).\n"
        )
        out.append("| accounts | events | RSS (MiB) | ingest (s) | events/s |")
        out.append("| --- | --- | --- | --- | --- |")
        for p in mem["measured"]:
            out.append(
                f"| {_fmt(p['accounts'])} | {_fmt(p.get('events'))} | {p['rss_mib']} | "
                f"{_fmt(p.get('ingest_seconds'))} | {_fmt(p.get('events_per_s'))} |"
            )
        for p in mem.get("extrapolated", []):
            out.append(f"| {_fmt(p['accounts'])} (**extrapolated**, {p['basis']}) | - | {p['rss_mib']} | - | - |")
        out.append("")
        for p in mem.get("unsettled", []):
            out.append(
                f"**{_fmt(p['accounts'])} accounts did not settle.** {p.get('how', 'After')} "
                f"{_fmt(p['seconds'])} s, the intake had applied {_fmt(p['intake_applied'])} of "
                f"{_fmt(p['events'])} events and the planner {_fmt(p['planner_applied'])} snapshots; RSS "
                f"{_mib(p['rss_mib'])} then. The planner judges the whole company for every day it catches "
                "up on, so its pace falls as the company grows: this is not the settled worker's memory, "
                "which would be higher (the planner keeps its own copy of every account).\n"
            )
        if 1_000_000 not in {p["accounts"] for p in [*mem["measured"], *mem.get("unsettled", [])]}:
            out.append(
                "1M accounts were not ingested: at the measured ingest rate that is about "
                f"{_one_million_minutes(mem)} minutes of bulk load for one worker on these 2 shared cores, "
                "beyond this benchmark's time budget (`--max-accounts 1000000` measures it). Any figure above "
                "for 1M is a straight line through the last two measured points, labelled as such, with the same "
                f"{1 + mem['orders_per_account']} events per account.\n"
            )

    out.append("## Targets\n")
    out.extend(targets(results))
    out.append("")
    out.append(LIMITS)

    return "\n".join(out).rstrip() + "\n"


def _one_million_minutes(mem: dict[str, Any]) -> str:
    rates = [p["events_per_s"] for p in mem["measured"] if p.get("events_per_s")]
    if not rates:
        return "?"
    events = 1_000_000 * (1 + mem["orders_per_account"])
    return f"{events / rates[-1] / 60:,.0f}"


LIMITS = f"""## What limits it, and the hot spots

**The pipeline against the peer.** The peer does the least a stateful Faust app does per
event: a stream step, a JSON decode and one table write (a changelog record). The pipeline does more
with each event (contract validation, duplicate and ordering checks, the account's state);
what it saves is the writes. The intake takes events in batches
(Faust's `take_events`, up to `TERRITORY_INTAKE_BATCH` = {DEFAULTS.intake_batch:,} events or
`TERRITORY_INTAKE_BATCH_S` = {DEFAULTS.intake_batch_s:g} s), applies them in memory, and at the end of the batch writes
each account or rep row it touched once, however many of the batch's events it took. It then
sends one snapshot per changed account or rep to `territory.state` and one `stream_times`
record for the whole batch: only that record moves the planner's watermark, so the planner
never judges a day while snapshots of the same batch are still to come. What the intake
produces grows with the accounts a batch touches, not with its events. The raw consume rate is
the client's ceiling on this broker, far above both the peer and the pipeline; it is shown for
reference only.

**Duplicates and crash replays.** There is no separate table of seen events. Each account (and
rep) row holds the ids of its recent events, as 16-hex-digit digests grouped by input topic and
event day (one flat mapping per row), and the input offsets it has applied. The row is written in the same changelog
record as the event's effect, so a duplicate, or a batch read again after a crash before its
end, is recognised from the row alone. Ids of days older than the late horizon (400 days
behind the stream's time) are pruned: an event that old is dead-lettered as too late anyway.

**The planner.** It is one consumer of the single-partition `territory.state`, on one of the
workers. It judges once per day of event time (and when who owns what changes, or when every
stream is read to its end); a batch that stays within the day is only folded in. A planner
that is days behind judges each day in turn, in slices of about one second, so that it does
not starve the intake on the same worker. It keeps the accounts as parsed objects and converts
only the ones that changed, caches each account's trailing-window sums per month, and its
checkpoint re-encodes only the parts that may have changed: a batch folded in without a
judgement rewrites only what folding orders in changes (the daily sales, per region and per map
cell, and the order ids behind them), not every detector's state.

**Two workers vs one.** The intake splits by input partition; the planner does not, as it
needs the whole company. Both workers, the broker and the benchmark share the same 2 cores, so
a second worker adds no CPU and the wall-clock ratio mostly shows the machine. Events per
worker CPU-second do not depend on how the cores are shared: they show how much extra work two
workers do for the same events. At 0.75 x one worker's or better, two machines would do at
least 1.5 x the work of one.

**Latency.** The event -> signal time is mostly waiting, not judging: the intake's batch (up
to {DEFAULTS.intake_batch_s:g} s), the planner's batch (up to {DEFAULTS.planner_interval_s:g} s), the watermark waiting for the slowest input
partition, and the worker's event loop shared with the intake. CP-SAT solves a proposal in a
thread ({DEFAULTS.solver_workers} solver workers, time limit `TERRITORY_SOLVER_TIME_LIMIT_S` = {DEFAULTS.solver_time_limit_s:g} s, then the
trade-off curve) while the planner judges on, so the signals of the days after a request do
not wait for its proposal; the solve still takes cores from the rest. Signal -> alert through
a proposal is mostly that solve; proposal -> alert is the store write and the Kafka alert.

**Memory.** The worker that holds the planner keeps each account twice: in the intake's
`accounts` table for its partitions (with its recent event ids) and in the planner's
`plan-accounts` table for all of them. Both tables keep the account's state object itself
(slots, no per-instance dict); their changelog records are the same JSON rows as before. Field
names, months, event days and area codes are one shared string each, not one per account. The
planner's copy shares one empty, unchangeable value for what only the intake fills (held
events, input offsets, event ids) and for empty buckets. A proposal's review context keeps the
account states as they were at the request and makes rows only for the accounts it shows. A
judgement's feature rows go into the model's frame a chunk at a time, so a month's valuation
of the whole company never holds a dict per account. The region lookup keeps its polygons,
not the GeoJSON they were parsed from (31 MB). Event ids beyond the late horizon are pruned,
so memory grows with the accounts and their recent events, not with their whole history.

**An earlier measurement** (before batched intake; not re-measured):
`TERRITORY_LOG_LEVEL=WARNING` (or higher) made Faust's `Worker` install its terminal spinner,
which set the root logger to DEBUG: every aiokafka and Faust debug call then built a log
record, {EARLIER_FIGURES["debug_logging_share_of_worker_cpu_at_log_level_warning"]:.0%} of the worker's CPU at the time. `run_worker` now sets `worker.spinner = None`, so the level no longer matters.
"""
