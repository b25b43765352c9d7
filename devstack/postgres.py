"""A throw-away PostgreSQL server from the distribution's binaries.

PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (``runuser``), in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from devstack.procs import free_port, tail

SERVICE_USER = "postgres"


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (``PG_BINDIR`` wins)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise FileNotFoundError("PostgreSQL server binaries not found: install Debian's 'postgresql' package or set PG_BINDIR")


@dataclass
class PostgresServer:
    """A running server listening on 127.0.0.1; the superuser is ``postgres``."""

    bindir: Path
    base: Path
    port: int
    password: str = field(repr=False)
    as_service_user: bool = False

    @property
    def datadir(self) -> Path:
        """The cluster's data folder."""
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        """The server log."""
        return self.base / "postgres.log"

    def uri(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        """A libpq/SQLAlchemy URI (SQLAlchemy 2.1 uses psycopg 3 for it) with user and password percent-encoded."""
        password = self.password if password is None else password
        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a server binary (as the service user when we are root)."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_service_user:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.base)

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URI."""
        import psycopg
        from psycopg import sql

        # autocommit: CREATE DATABASE cannot run inside a transaction.
        with psycopg.connect(self.uri(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.uri(name)

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.base} -c fsync=off -c max_connections=200"
        result = self.run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-o", options, "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail(self.log_path)}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` or ``immediate``)."""
        self.run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def start_postgres(port: int = 0) -> PostgresServer:
    """Initialise a fresh cluster in a temporary folder and start it."""
    as_service_user = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="mlmc-postgres-"))
    server = PostgresServer(find_bindir(), base, port or free_port(), secrets.token_urlsafe(16), as_service_user)
    password_file = base / "pwfile"
    password_file.write_text(server.password + "\n")
    if as_service_user:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(base, user.pw_uid, user.pw_gid)
        os.chown(password_file, user.pw_uid, user.pw_gid)
    try:
        server.run(
            "initdb", "-D", str(server.datadir), "-U", "postgres", "-E", "UTF8", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
        )  # fmt: skip
        password_file.unlink()
        server.start()
    except (subprocess.CalledProcessError, RuntimeError) as error:
        detail = error.stderr if isinstance(error, subprocess.CalledProcessError) else str(error)
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {detail}") from error
    return server
