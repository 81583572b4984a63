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

from territory.broker import free_port

INSTALL_HINT = "run `bash deploy/services/install.sh` (make test does) to install it from Debian's packages"


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway cluster; yields a SQLAlchemy URL (psycopg driver)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
    root = tempfile.mkdtemp(prefix="territory-pg-")
    data = os.path.join(root, "data")
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_server_user([f"{bin_dir}/initdb", "-D", data, "-U", "territory", "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True,
    )
    # Loopback only, no Unix socket in a system directory, small and quick.
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    server = subprocess.Popen(
        _as_server_user([f"{bin_dir}/postgres", "-D", data, *options.split()]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(
            [f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        ).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {server.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
        subprocess.run(
            [f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "territory", "territory"], check=True
        )
        yield f"postgresql+psycopg://territory@127.0.0.1:{port}/territory"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
