"""How every Kafka client of the project connects: TLS and SASL from the settings.

PLAINTEXT (the default) is for the embedded broker on loopback only. On a real cluster set
TERRITORY_KAFKA_SECURITY_PROTOCOL to SSL, SASL_PLAINTEXT or SASL_SSL; the worker (Faust)
and the command-line clients (aiokafka) then use the same CA file, client certificate and
SASL login.
"""

from __future__ import annotations

import ssl
from typing import Any

from core.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context (the CA file, else the system's CAs), with the client
    certificate when one is set; None without TLS."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin client."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options


def faust_credentials(settings: Settings) -> Any:
    """`broker_credentials` for the Faust app (None: PLAINTEXT)."""
    import faust

    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def table_store_url(settings: Settings) -> str:
    """Faust's table store: in memory (rebuilt from the changelogs at start) or RocksDB on disk
    under the data directory (rocksdict), where a restart re-reads only the changelog tail."""
    return {"memory": "memory://", "rocksdb": "rocksdb://"}[settings.table_store]
