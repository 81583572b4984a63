"""A private PostgreSQL server for tests: Debian's binaries, a temporary cluster on a
loopback port, removed afterwards. Installed by deploy/services/install.sh."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from territory.broker import die_with_parent, free_port

INSTALL_HINT = "run `bash deploy/services/install.sh` (make test does) to install it from Debian's packages"


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class PostgresServer:
    """A throwaway cluster on a loopback port that can be stopped and started again with its
    data (the store-outage test takes the database away and gives it back)."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
        self.bin_dir = bin_dir
        self.root = tempfile.mkdtemp(prefix="territory-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_server_user([f"{bin_dir}/initdb", "-D", self.data, "-U", "territory", "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://territory@127.0.0.1:{self.port}/territory"

    def start(self) -> "PostgresServer":
        # Loopback only, no Unix socket in a system directory, small and quick.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} -c fsync=off"
        )
        self.process = subprocess.Popen(
            _as_server_user([f"{self.bin_dir}/postgres", "-D", self.data, *options.split()]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [f"{self.bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            ).returncode
            != 0
        ):
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode(errors="replace")[-2000:] if self.process.stderr else ""
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start: {error}")
            time.sleep(0.2)
        return self

    def create_database(self) -> None:
        subprocess.run(
            [f"{self.bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "territory", "territory"],
            check=True,
        )

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as in an outage."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            _as_server_user([f"{self.bin_dir}/pg_ctl", "-D", self.data, "stop", "-m", "fast"]),
            capture_output=True,
            timeout=30,
        )
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway cluster; yields a SQLAlchemy URL (psycopg driver)."""
    with running_postgres() as server:
        yield server.url


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started cluster with an empty `territory` database, removed afterwards."""
    server = PostgresServer()
    try:
        server.start().create_database()
        yield server
    finally:
        server.remove()
