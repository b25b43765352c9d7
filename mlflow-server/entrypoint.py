#!/usr/bin/env python3
"""Entrypoint of the MLflow tracking-server image, configured only from settings and secrets.

``entrypoint.py [serve]``  wait for PostgreSQL, migrate, check the artifact store, start ``mlflow server``
``entrypoint.py migrate``  wait for PostgreSQL and bring the schema up to date, then exit
``entrypoint.py check``    check the settings, the database and the artifact store, then exit

Every setting is an environment variable (see ``SETTINGS`` and the README's
"Tracking server" section). The database password comes from
``MLFLOW_DB_PASSWORD`` or the file named by ``MLFLOW_DB_PASSWORD_FILE`` and is
never printed; the server gets the backend store URI through its environment,
not its command line, so it does not show in ``ps`` either.

Exit codes: 0 done, 2 bad settings, 3 database unreachable, 4 artifact store unusable.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import os
import re
import shlex
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

#: Every setting the entrypoint reads: name -> (default, meaning). None means required.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "MLFLOW_DB_HOST": (None, "PostgreSQL host"),
    "MLFLOW_DB_PORT": ("5432", "PostgreSQL port"),
    "MLFLOW_DB_NAME": ("mlflow", "database"),
    "MLFLOW_DB_USER": ("mlflow", "database user"),
    "MLFLOW_DB_PASSWORD": ("", "database password (or MLFLOW_DB_PASSWORD_FILE)"),
    "MLFLOW_DB_PASSWORD_FILE": ("", "file holding the database password (a mounted Secret)"),
    "MLFLOW_DB_SSLMODE": ("prefer", "libpq sslmode: disable, allow, prefer, require, verify-ca, verify-full"),
    "MLFLOW_DB_WAIT_SECONDS": ("120", "how long to wait for the database before giving up"),
    "MLFLOW_ARTIFACTS_DESTINATION": (None, "artifact store: s3://bucket[/prefix], gs://bucket[/prefix] or a local path"),
    "MLFLOW_ARTIFACTS_CHECK": ("true", "write and delete a probe object at start-up to prove the store and its credentials work"),
    "MLFLOW_S3_ENDPOINT_URL": ("", "S3 API endpoint for S3-compatible stores (MinIO, IBM COS, moto); read by MLflow itself"),
    "MLFLOW_HOST": ("0.0.0.0", "address the server binds"),
    "MLFLOW_PORT": ("5000", "port the server listens on"),
    "MLFLOW_WORKERS": ("2", "server worker processes"),
    "MLFLOW_KEEP_ALIVE_TIMEOUT": ("65", "seconds an idle keep-alive connection stays open (above the cloud load balancers' 60 s idle timeout)"),
    "MLFLOW_SHUTDOWN_TIMEOUT": ("30", "seconds in-flight requests (large uploads) may take to finish on SIGTERM"),
    "MLFLOW_ALLOWED_HOSTS": ("localhost,localhost:5000,127.0.0.1,127.0.0.1:5000,mlflow,mlflow:5000", "Host headers the server answers"),
    "MLFLOW_AUTH": ("false", "MLflow basic auth, its user store in the same PostgreSQL"),
    "MLFLOW_ADMIN_USERNAME": ("admin", "admin user created on first start when auth is on"),
    "MLFLOW_ADMIN_PASSWORD": ("", "admin password (or MLFLOW_ADMIN_PASSWORD_FILE); required when auth is on"),
    "MLFLOW_ADMIN_PASSWORD_FILE": ("", "file holding the admin password"),
    "MLFLOW_FLASK_SERVER_SECRET_KEY": ("", "CSRF key of the auth app, the same on every replica; default: derived from the admin password"),
    "MLFLOW_AUTH_DEFAULT_PERMISSION": ("READ", "permission of users on resources they do not own: READ, EDIT, MANAGE, NO_PERMISSIONS"),
}
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
#: Key of the PostgreSQL advisory lock that serialises migrations of concurrent starts.
MIGRATION_LOCK = 0x6D6C666C6F77  # "mlflow"

EXIT_SETTINGS, EXIT_DATABASE, EXIT_ARTIFACTS = 2, 3, 4


class SettingError(Exception):
    """A setting is missing or invalid; ``exit_code`` says which kind of failure."""

    def __init__(self, message: str, exit_code: int = EXIT_SETTINGS):
        super().__init__(message)
        self.exit_code = exit_code


def log(message: str) -> None:
    """One line on stderr, prefixed so it stands out among the server's logs."""
    print(f"[mlflow-server] {message}", file=sys.stderr, flush=True)


def _setting(env: dict[str, str], name: str) -> str:
    default = SETTINGS[name][0]
    value = env.get(name, "").strip() or (default or "")
    if default is None and not value:
        raise SettingError(f"{name} is required ({SETTINGS[name][1]})")
    return value


def _int_setting(env: dict[str, str], name: str, low: int, high: int) -> int:
    raw = _setting(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _bool_setting(env: dict[str, str], name: str) -> bool:
    raw = _setting(env, name).lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name} must be true or false, not {raw!r}")


def _secret(env: dict[str, str], name: str) -> str:
    """The value of ``name`` or the content of the file named by ``name``_FILE (the file wins)."""
    file_name = env.get(f"{name}_FILE", "").strip()
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise SettingError(f"{name}_FILE: cannot read {file_name} ({error.strerror})") from None
        except UnicodeDecodeError:
            raise SettingError(f"{name}_FILE: {file_name} is not UTF-8 text") from None
    return _utf8(env.get(name, ""), name)


def _utf8(value: str, name: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SettingError(f"{name} is not valid UTF-8") from None
    return value


@dataclass(frozen=True)
class Settings:
    """The parsed settings; ``repr`` never shows the passwords."""

    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str
    db_sslmode: str
    db_wait_seconds: int
    artifacts_destination: str
    artifacts_check: bool
    host: str
    port: int
    workers: int
    keep_alive_timeout: int
    shutdown_timeout: int
    allowed_hosts: str
    auth: bool
    admin_username: str
    admin_password: str
    auth_default_permission: str

    def __repr__(self) -> str:
        return f"Settings(db={self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}, artifacts={self.artifacts_destination}, auth={self.auth})"

    @property
    def backend_store_uri(self) -> str:
        """SQLAlchemy URI with user and password percent-encoded, so any character works."""
        user = quote(self.db_user, safe="")
        password = quote(self.db_password, safe="")
        credentials = f"{user}:{password}" if self.db_password else user
        host = f"[{self.db_host}]" if ":" in self.db_host else self.db_host
        return f"postgresql://{credentials}@{host}:{self.db_port}/{quote(self.db_name, safe='')}?sslmode={self.db_sslmode}"

    @property
    def redacted_uri(self) -> str:
        """The backend URI as it may be printed."""
        return self.backend_store_uri.replace(f":{quote(self.db_password, safe='')}@", ":***@") if self.db_password else self.backend_store_uri


def _db_host(value: str) -> str:
    """A host name, an IPv4 address or an IPv6 address (with or without brackets), nothing more."""
    host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            pass
    elif re.fullmatch(r"[A-Za-z0-9._-]+", host):
        return host
    shown = "a URI with credentials (not shown)" if "@" in value else repr(value)
    raise SettingError(
        f"MLFLOW_DB_HOST must be a host name or IP address only (port in MLFLOW_DB_PORT, database in MLFLOW_DB_NAME), not {shown}"
    )


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Parse and validate every setting; errors name the setting."""
    env = dict(os.environ if env is None else env)
    sslmode = _setting(env, "MLFLOW_DB_SSLMODE")
    if sslmode not in SSLMODES:
        raise SettingError(f"MLFLOW_DB_SSLMODE must be one of {', '.join(SSLMODES)}, not {sslmode!r}")
    destination = _setting(env, "MLFLOW_ARTIFACTS_DESTINATION")
    scheme = urlparse(destination).scheme
    if scheme not in ("", "file", "s3", "gs"):
        raise SettingError(f"MLFLOW_ARTIFACTS_DESTINATION: unsupported scheme {scheme!r} (use s3://, gs:// or a local path)")
    if scheme in ("s3", "gs") and not urlparse(destination).netloc:
        raise SettingError(f"MLFLOW_ARTIFACTS_DESTINATION: {destination!r} names no bucket")
    auth = _bool_setting(env, "MLFLOW_AUTH")
    admin_password = _secret(env, "MLFLOW_ADMIN_PASSWORD")
    if auth and not admin_password:
        raise SettingError("MLFLOW_ADMIN_PASSWORD (or MLFLOW_ADMIN_PASSWORD_FILE) is required when MLFLOW_AUTH is true")
    if auth and len(admin_password) < 12:
        raise SettingError("MLFLOW_ADMIN_PASSWORD must be at least 12 characters (MLflow refuses shorter passwords)")
    permission = _setting(env, "MLFLOW_AUTH_DEFAULT_PERMISSION").upper()
    if permission not in PERMISSIONS:
        raise SettingError(f"MLFLOW_AUTH_DEFAULT_PERMISSION must be one of {', '.join(PERMISSIONS)}, not {permission!r}")
    allowed_hosts = ",".join(h.strip() for h in _setting(env, "MLFLOW_ALLOWED_HOSTS").split(",") if h.strip())
    if not allowed_hosts:
        raise SettingError("MLFLOW_ALLOWED_HOSTS must list at least one host")
    db_host = _db_host(_utf8(_setting(env, "MLFLOW_DB_HOST"), "MLFLOW_DB_HOST"))
    endpoint = env.get("MLFLOW_S3_ENDPOINT_URL", "").strip()
    if endpoint and (urlparse(endpoint).scheme not in ("http", "https") or not urlparse(endpoint).netloc):
        raise SettingError(f"MLFLOW_S3_ENDPOINT_URL must be an http(s) URL, not {endpoint!r}")
    if scheme == "file" and not urlparse(destination).path:
        raise SettingError("MLFLOW_ARTIFACTS_DESTINATION: file:// names no folder")
    return Settings(
        db_host=db_host,
        db_port=_int_setting(env, "MLFLOW_DB_PORT", 1, 65535),
        db_name=_setting(env, "MLFLOW_DB_NAME"),
        db_user=_utf8(_setting(env, "MLFLOW_DB_USER"), "MLFLOW_DB_USER"),
        db_password=_secret(env, "MLFLOW_DB_PASSWORD"),
        db_sslmode=sslmode,
        db_wait_seconds=_int_setting(env, "MLFLOW_DB_WAIT_SECONDS", 0, 3600),
        artifacts_destination=destination,
        artifacts_check=_bool_setting(env, "MLFLOW_ARTIFACTS_CHECK"),
        host=_setting(env, "MLFLOW_HOST"),
        port=_int_setting(env, "MLFLOW_PORT", 1, 65535),
        workers=_int_setting(env, "MLFLOW_WORKERS", 1, 64),
        keep_alive_timeout=_int_setting(env, "MLFLOW_KEEP_ALIVE_TIMEOUT", 1, 3600),
        shutdown_timeout=_int_setting(env, "MLFLOW_SHUTDOWN_TIMEOUT", 1, 3600),
        allowed_hosts=allowed_hosts,
        auth=auth,
        admin_username=_setting(env, "MLFLOW_ADMIN_USERNAME"),
        admin_password=admin_password,
        auth_default_permission=permission,
    )


# --------------------------------------------------------------------------- database


def _engine(settings: Settings):
    import sqlalchemy

    return sqlalchemy.create_engine(settings.backend_store_uri, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def wait_for_database(settings: Settings, engine) -> None:
    """Connect with bounded retries; raise SettingError (exit 3) naming the host when it never answers."""
    import sqlalchemy

    deadline = time.monotonic() + settings.db_wait_seconds
    attempt, delay = 0, 1.0
    while True:
        attempt += 1
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            if attempt > 1:
                log(f"database {settings.db_host}:{settings.db_port} is up after {attempt} attempts")
            return
        except sqlalchemy.exc.OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            if settings.db_password and settings.db_password in reason:
                reason = "(details withheld: the driver's message contains the password)"
            if any(p in reason for p in ("password authentication failed", "no password supplied")) or ("database" in reason and "does not exist" in reason):
                raise SettingError(f"database {settings.redacted_uri}: {reason} (check MLFLOW_DB_USER, MLFLOW_DB_PASSWORD, MLFLOW_DB_NAME)", EXIT_DATABASE) from None
            if time.monotonic() + delay > deadline:
                raise SettingError(
                    f"database {settings.db_host}:{settings.db_port} unreachable after {attempt} attempts in "
                    f"{settings.db_wait_seconds} s (MLFLOW_DB_WAIT_SECONDS): {reason}",
                    EXIT_DATABASE,
                ) from None
            log(f"waiting for database {settings.db_host}:{settings.db_port} (attempt {attempt}: {reason})")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def migrate(settings: Settings, engine) -> str:
    """Create or upgrade the tracking schema (and the auth store's when auth is on), idempotently.

    A PostgreSQL advisory lock serialises concurrent starts: the first creates
    the schema, the others wait and then find it up to date. Returns what was done.
    """
    import sqlalchemy
    from mlflow.store.db import utils as db_utils

    with engine.connect() as lock_connection:
        lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            head = db_utils._get_latest_schema_revision()
            if db_utils._is_empty_database(engine):
                db_utils._initialize_tables(engine)
                done = f"created the tracking schema (revision {head})"
            elif db_utils._get_schema_version(engine) != head:
                before = db_utils._get_schema_version(engine)
                db_utils._upgrade_db(engine)
                done = f"upgraded the tracking schema from {before} to {head}"
            else:
                done = f"tracking schema already at {head}"
            if settings.auth:
                from mlflow.server.auth.db import utils as auth_utils

                auth_utils.migrate_if_needed(engine, "head")
                done += "; auth store up to date"
        finally:
            lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            lock_connection.commit()
    return done


# --------------------------------------------------------------------------- artifact store


def check_artifact_store(settings: Settings, env: dict[str, str]) -> None:
    """Write and delete a probe object in the destination; raise SettingError (exit 4) naming the setting."""
    destination = settings.artifacts_destination
    parsed = urlparse(destination)
    probe = f".mlflow-server-probe-{uuid.uuid4().hex}"
    try:
        if parsed.scheme == "s3":
            import boto3
            import botocore.exceptions

            endpoint = env.get("MLFLOW_S3_ENDPOINT_URL") or None
            s3 = boto3.client("s3", endpoint_url=endpoint)
            key = "/".join(p for p in (parsed.path.strip("/"), probe) if p)
            try:
                s3.put_object(Bucket=parsed.netloc, Key=key, Body=b"probe")
                s3.delete_object(Bucket=parsed.netloc, Key=key)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
                where = f" at MLFLOW_S3_ENDPOINT_URL={endpoint}" if endpoint else ""
                raise SettingError(
                    f"MLFLOW_ARTIFACTS_DESTINATION={destination}{where} is unusable: {error} "
                    "(check the bucket name and the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the workload identity)",
                    EXIT_ARTIFACTS,
                ) from None
        elif parsed.scheme == "gs":
            from google.api_core import exceptions as google_exceptions
            from google.auth import exceptions as auth_exceptions
            from google.cloud import storage

            try:
                blob = storage.Client().bucket(parsed.netloc).blob("/".join(p for p in (parsed.path.strip("/"), probe) if p))
                blob.upload_from_string(b"probe")
                blob.delete()
            except (google_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as error:
                raise SettingError(
                    f"MLFLOW_ARTIFACTS_DESTINATION={destination} is unusable: {error} (check the bucket and the workload identity)",
                    EXIT_ARTIFACTS,
                ) from None
        else:
            folder = Path(parsed.path if parsed.scheme == "file" else destination)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / probe).write_bytes(b"probe")
                (folder / probe).unlink()
            except OSError as error:
                raise SettingError(f"MLFLOW_ARTIFACTS_DESTINATION={destination} is not writable: {error.strerror}", EXIT_ARTIFACTS) from None
    except ImportError as error:
        raise SettingError(f"MLFLOW_ARTIFACTS_DESTINATION={destination} needs the Python package {error.name}", EXIT_ARTIFACTS) from None


# --------------------------------------------------------------------------- server


def auth_config(settings: Settings, folder: Path) -> Path:
    """Write the basic-auth config (it holds the database URI) readable by this user only."""
    path = folder / "basic_auth.ini"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # configparser interpolates '%': double it so encoded passwords survive.
    uri = settings.backend_store_uri.replace("%", "%%")
    with os.fdopen(fd, "w") as out:
        out.write(
            "[mlflow]\n"
            f"default_permission = {settings.auth_default_permission}\n"
            f"database_uri = {uri}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
    return path


def server_command(settings: Settings) -> list[str]:
    """The ``mlflow server`` command line: no secret in it (the store URI travels in the environment)."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--artifacts-destination", settings.artifacts_destination,
        "--serve-artifacts",
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
        "--allowed-hosts", settings.allowed_hosts,
        # uvicorn (MLflow's default server): the host-header and CORS checks work only with it.
        # It has no per-request timeout; the load balancer in front bounds a request's time.
        "--uvicorn-opts", shlex.join(
            ["--timeout-keep-alive", str(settings.keep_alive_timeout), "--timeout-graceful-shutdown", str(settings.shutdown_timeout)]
        ),
    ]  # fmt: skip
    if settings.auth:
        command += ["--app-name", "basic-auth"]
    return command


def server_environment(settings: Settings, env: dict[str, str], folder: Path) -> dict[str, str]:
    """The server's environment: the store URI, and the auth config and admin credentials when auth is on."""
    server_env = {k: v for k, v in env.items() if k not in ("MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD")}
    server_env["MLFLOW_BACKEND_STORE_URI"] = settings.backend_store_uri
    if settings.auth:
        server_env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config(settings, folder))
        server_env["MLFLOW_AUTH_ADMIN_USERNAME"] = settings.admin_username
        server_env["MLFLOW_AUTH_ADMIN_PASSWORD"] = settings.admin_password
        # Every replica and restart must share the key, so derive it from a secret they share.
        derived = hmac.new(settings.admin_password.encode(), b"mlflow-flask-server-secret-key", hashlib.sha256).hexdigest()
        server_env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = env.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or derived
    return server_env


def check_listen_address(settings: Settings) -> None:
    """MLFLOW_HOST:MLFLOW_PORT can be bound (mlflow server itself exits 0 when it cannot)."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as error:
        raise SettingError(f"cannot listen on MLFLOW_HOST={settings.host} MLFLOW_PORT={settings.port}: {error.strerror or error}") from None


def prepare(settings: Settings, env: dict[str, str], check_artifacts: bool) -> None:
    """Wait for the database, migrate, and check the artifact store."""
    engine = _engine(settings)
    try:
        log(f"database {settings.redacted_uri}")
        wait_for_database(settings, engine)
        log(migrate(settings, engine))
    finally:
        engine.dispose()
    if check_artifacts:
        check_artifact_store(settings, env)
        log(f"artifact store {settings.artifacts_destination} is writable")


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit code (``serve`` replaces this process with the server)."""
    parser = argparse.ArgumentParser(
        prog="mlflow-server-entrypoint",
        description="Start the MLflow tracking server from settings and secrets.",
        epilog="settings (environment variables):\n"
        + "\n".join(f"  {name:<31} {meaning}" + (f" (default {default!r})" if default else "") for name, (default, meaning) in SETTINGS.items())
        + "\n\nexit codes: 0 done, 2 bad settings, 3 database unreachable or refusing the credentials, 4 artifact store unusable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "migrate", "check"),
        help="serve (default): wait for the database, migrate, check the artifact store, start mlflow server; "
        "migrate: wait and migrate, then exit; check: everything serve checks, then exit",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        settings = load_settings(env)
        if args.command != "migrate":
            check_listen_address(settings)
        prepare(settings, env, check_artifacts=args.command != "migrate" and settings.artifacts_check)
    except SettingError as error:
        log(f"error: {error}")
        return error.exit_code
    if args.command != "serve":
        return 0
    folder = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    command = server_command(settings)
    log(f"starting mlflow server on {settings.host}:{settings.port} ({settings.workers} workers, auth {'on' if settings.auth else 'off'})")
    os.execvpe(command[0], command, server_environment(settings, env, folder))
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
