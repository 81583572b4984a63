"""Territory monitor: the command line, the worker factory and the embedded broker that tie
the stages together.

Data flows monitor -> planner (with detectors, potential and rebalancer) -> alerts; this
package only wires them. Settings and topic names are shared from `core/`.
"""
