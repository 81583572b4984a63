"""The planner stage: the company view, the detectors and the rebalance requests.

- `watermark`: the event time the planner may judge at, over unevenly read input streams.
- `planner`: what the detectors find, which signals to publish, when to rebalance.
- `session`: the planner's whole job over plain mappings (shared by the worker and the
  backtest), its checkpoint and its restore.
- `agents`: the Faust wiring.
"""
