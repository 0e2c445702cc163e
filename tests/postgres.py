"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package,
``initdb`` in a temporary folder as an unprivileged user, ``pg_ctl`` on a free port.

CI installs the package (``.ci/run``); where it is missing the tests that
need it are skipped with a message saying how to install it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

INSTALL_HINT = "install it with `apt-get install -y postgresql` (CI's .ci/run does)"


def _binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable_reason() -> str | None:
    """Why no server can be started here (None: it can)."""
    if _binaries() is None:
        return f"PostgreSQL is not installed: {INSTALL_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as; " + INSTALL_HINT
    return None


class PostgresServer:
    """One server in a temporary folder, started and stopped by the tests."""

    def __init__(self) -> None:
        binaries = _binaries()
        assert binaries is not None, INSTALL_HINT
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="xrdid-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._names = itertools.count()
        # initdb refuses root: run the server as the package's unprivileged user.
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "xrdid",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )

    def _run(self, argv: Sequence[str]) -> None:
        if self._user is not None:
            argv = ["runuser", "-u", self._user.pw_name, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options]
            + ["-w", "-t", "60", "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://xrdid@127.0.0.1:{self.port}/{database}"

    def create_database(self, encoding: str = "UTF8") -> str:
        """A new empty database's URL (another ``encoding`` with the C locale)."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        options = (
            ""
            if encoding == "UTF8"
            else f" ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
        )
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{options}')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def held_scans(database_url: str, job_id: str, lease_owner_like: str) -> list[int]:
    """The scans of a batch job that the processes whose lease owner matches
    ``lease_owner_like`` (SQL LIKE; owners are ``jobs-<host>-<pid>-<uuid>``)
    hold a claim on now."""
    import psycopg

    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT idx FROM job_file WHERE job_id = %s AND status = 'running' "
            "AND lease_owner LIKE %s ORDER BY idx",
            (job_id, lease_owner_like),
        ).fetchall()
    return [int(row[0]) for row in rows]
