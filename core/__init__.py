"""What every stage shares and nothing else: topic names, settings, the event contract, the
records between stages, clocks, shares, formatting and the metrics registry.

Most modules are pure (tests/test_layout.py lists them). The exceptions are named: `metrics`
builds on prometheus_client, `kafka_auth` builds the Kafka clients' TLS and SASL options (it
imports aiokafka's and Faust's helpers when called), and `producing` works on a Faust app it is
handed (it imports neither). No module imports a stage, a database or a web library.
"""
