"""Detectors: small stateful classes that turn territory figures into findings.

Each detector has one `update` method that returns the detector itself, exposes what
it found through properties, and can save and restore its state (`state_dict` /
`load_state_dict`). No Kafka or database imports: the planner feeds them.

- `ImbalanceDetector`: a rep's share of potential against the capacity-weighted fair
  share, with hysteresis so a value hovering at the band's edge does not flap.
"""

from detectors.imbalance import ImbalanceDetector, ImbalanceFinding

__all__ = ["ImbalanceDetector", "ImbalanceFinding"]
