"""The intake stage and, for now, the planner beside it.

Pure logic: `contract` (validation), `intake` (each message's outcome: applied,
duplicate, held or dead-lettered), `state` (applying events, monthly windows, per-rep
aggregates), `geocode` and `regions` (offline postal codes and regions), `potential`
(the learned potential model), and the planner's `watermark`, `planner` (detectors and
rebalance requests) and `session` (the planner's whole job over plain mappings, shared
with the backtest). `agents` wires intake and planner to Faust; `metrics` holds the
Prometheus metrics.
"""
