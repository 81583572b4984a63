"""The worker over TLS: a real handshake, verified against a private CA, on loopback.

The embedded broker (Tansu 0.6) cannot serve TLS itself (its CLI refuses a certificate
together with a key), so a TLS terminator in this process stands in front of it: the
broker advertises the terminator's port, and every connection the worker makes (Faust's
consumer and producer, the admin client that creates topics) is TLS with certificate
verification. A client without the CA, or speaking plaintext, gets nothing.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from core import topics
from territory.broker import EmbeddedBroker, die_with_parent, free_port
from core.kafka_auth import client_options, faust_credentials
from core.settings import Settings
from tests.kafka_io import wait_for


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    run = lambda *args: subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=territory test CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@contextmanager
def tls_terminator(listen_port: int, target_port: int, certificate: Path, key: Path) -> Iterator[None]:
    """TLS on 127.0.0.1:listen_port, forwarded in plaintext to 127.0.0.1:target_port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=context)
        ready.set()
        async with server:
            await server.serve_forever()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except asyncio.CancelledError:
            pass  # stopped by the test

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(5)


def test_client_options_follow_the_settings(tmp_path):
    ca, _, _ = make_certificates(tmp_path)
    assert client_options(Settings()) == {"security_protocol": "PLAINTEXT"} and faust_credentials(Settings()) is None
    tls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca))
    options = client_options(tls)
    assert options["security_protocol"] == "SSL" and options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    sasl = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=str(ca),
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="territory",
        kafka_sasl_password="s3cret",
    )
    options = client_options(sasl)
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "territory")
    credentials = faust_credentials(sasl)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"


@pytest.mark.slow
def test_the_worker_works_over_tls_and_plaintext_clients_get_nothing(tmp_path):
    import os
    import sys

    from tests.conftest import WorkerProcess

    ca, certificate, key = make_certificates(tmp_path)
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca))
    tls_port = free_port()
    broker = EmbeddedBroker(
        partitions=1,
        log_path=tmp_path / "broker.log",
        advertised_port=tls_port,
        client_options=client_options(settings),
    )
    broker.port = free_port()
    with tls_terminator(tls_port, broker.port, certificate, key), broker:
        metrics_port = free_port()
        env = {
            **os.environ,
            "TERRITORY_KAFKA_URL": broker.url,
            "TERRITORY_PARTITIONS": "1",
            "TERRITORY_DB_URL": f"sqlite:///{tmp_path / 'territory.db'}",
            "TERRITORY_METRICS_PORT": str(metrics_port),
            "TERRITORY_WEB_PORT": str(free_port()),
            "TERRITORY_DATA_DIR": str(tmp_path / "worker"),
            "TERRITORY_APP_ID": "tls",
            "TERRITORY_KAFKA_SECURITY_PROTOCOL": "SSL",
            "TERRITORY_KAFKA_SSL_CAFILE": str(ca),
        }
        log_path = tmp_path / "worker.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "territory.cli", "worker"],
            env=env,
            stdout=open(log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        worker = WorkerProcess(process, metrics_port, env["TERRITORY_DB_URL"], log_path)
        try:

            async def produce_over(options: dict) -> None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=5000, **options
                )
                await producer.start()
                try:
                    await producer.send_and_wait(
                        topics.ACCOUNTS,
                        b'{"event_id": "e1", "type": "account.upserted", '
                        b'"occurred_at": "2025-01-01T00:00:00Z", "data": {"account_id": "a1",'
                        b' "lat": 52.5, "lon": 13.4}}',
                        key=b"a1",
                    )
                finally:
                    await producer.stop()

            asyncio.run(produce_over(client_options(settings)))
            wait_for(
                lambda: worker.metric("territory_intake_events_total", {"outcome": "applied"}) == 1,
                120,
                "the worker to apply the event it read over TLS",
            )
            for options in (
                {"security_protocol": "PLAINTEXT"},
                {"security_protocol": "SSL", "ssl_context": ssl.create_default_context()},
            ):  # no CA
                with pytest.raises(Exception):
                    asyncio.run(produce_over(options))
            assert worker.metric("territory_intake_events_total", {"outcome": "applied"}) == 1
        finally:
            worker.stop()
