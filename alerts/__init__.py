"""The alert stage: store signals and proposals, tell people about them, take decisions.

- `schema`, `store` (and `migrations/`): signals, proposals, moves, decisions, the alert
  outbox, weekly reports and the owners the worker reported (SQLAlchemy; SQLite by
  default, PostgreSQL by URL).
- `alert`, `messages`: an incident and its text from a signal or a proposal.
- `dispatch`, `sinks`: the outbox and its deliveries (Kafka, Alertmanager, webhook,
  e-mail, log) with throttling and retries.
- `decisions`: approve / reject, stale-move checks, publishing approvals.
- `report`, `charts`, `intelligence`, `weekly`: the weekly review and its pictures.
- `web`: the review page and the HTTP API.
- `agents`: the Faust wiring of all of it.
"""
