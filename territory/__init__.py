"""Territory monitor: the command line, settings and embedded broker that tie the stages together.

Data flows monitor -> detectors -> rebalancer -> alerts; this package only wires them.
"""
