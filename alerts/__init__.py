"""The alert stage: store signals and proposals, tell people about them.

`store` keeps signals, proposals and their moves (SQLAlchemy; SQLite by default,
PostgreSQL by URL); `messages` turns a proposal into an alert and readable log lines;
`agents` wires both to the output topics.
"""
