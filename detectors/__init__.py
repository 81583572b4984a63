"""Detectors: small stateful classes that turn territory figures into findings.

Each detector has one `update` method that returns the detector itself, exposes what
it found through properties, and can save and restore its state (`state_dict` /
`load_state_dict`). No Kafka or database imports: the planner feeds them.

- `ImbalanceDetector`: a rep's share of potential against the capacity-weighted fair
  share, with hysteresis so a value hovering at the band's edge does not flap.
- `MarketShockDetector`: a region's demand dropping or rising against the rest of the
  country (which removes the seasonality all regions share), fed once per day with
  sales per region; river `PageHinkley` on the standardised share, one finding per
  shock with its direction, size and start.
- `ModelDriftDetector`: a sustained rise of the potential model's prediction error;
  river `ADWIN` on the scaled error, with the start and size of the rise.
"""

from detectors.imbalance import ImbalanceDetector, ImbalanceFinding
from detectors.market_shock import MarketShockDetector, ShockEvidence, ShockFinding
from detectors.model_drift import ErrorDriftEvidence, ErrorDriftFinding, ModelDriftDetector

__all__ = [
    "ErrorDriftEvidence",
    "ErrorDriftFinding",
    "ImbalanceDetector",
    "ImbalanceFinding",
    "MarketShockDetector",
    "ModelDriftDetector",
    "ShockEvidence",
    "ShockFinding",
]
