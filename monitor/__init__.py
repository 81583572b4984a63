"""The intake stage: input events become per-account and per-rep state.

Pure logic: `intake` (each message's outcome: applied, duplicate, held or dead-lettered),
`state` (applying events, monthly windows, per-rep aggregates), `dedupe` (the event ids a
state row has applied) and `regions` (offline country and admin areas of a location).
`agents` wires the intake to Faust; `worker_health` is the one module that reads Faust's and
aiokafka's private attributes. The event contract, settings and metrics are in `core/`, the
planner in `planner/`, the potential model in `potential/`.
"""
