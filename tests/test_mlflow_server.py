"""The tracking-server entrypoint (mlflow-server/entrypoint.py), run as a process against a real
PostgreSQL and a real S3 endpoint (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from devstack.paths import REPO_ROOT
from devstack.procs import free_port, start_service, stop_process_group

ENTRYPOINT = REPO_ROOT / "mlflow-server" / "entrypoint.py"
#: Every character the issue names, plus a space.
NASTY_PASSWORD = "p@ss:w/rd%#?[x]!= y"


def load_entrypoint():
    """The entrypoint as a module (it is a script in the image, not a package)."""
    spec = importlib.util.spec_from_file_location("mlflow_server_entrypoint", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


entrypoint = load_entrypoint()

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
BASE = {"MLFLOW_DB_HOST": "db", "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/artifacts"}


# --------------------------------------------------------------------------- settings, no processes


def test_backend_uri_percent_encodes_any_password_and_parses_back():
    settings = entrypoint.load_settings({**BASE, "MLFLOW_DB_USER": "ml user@x", "MLFLOW_DB_PASSWORD": NASTY_PASSWORD, "MLFLOW_DB_SSLMODE": "require"})
    url = make_url(settings.backend_store_uri)
    assert (url.username, url.password, url.host, url.port, url.database) == ("ml user@x", NASTY_PASSWORD, "db", 5432, "mlflow")
    assert url.query["sslmode"] == "require"
    assert NASTY_PASSWORD not in repr(settings) and NASTY_PASSWORD not in settings.redacted_uri
    assert all(NASTY_PASSWORD not in part for part in entrypoint.server_command(settings))


def test_a_uri_pasted_into_the_host_setting_is_refused_without_echoing_it():
    with pytest.raises(entrypoint.SettingError) as raised:
        entrypoint.load_settings({**BASE, "MLFLOW_DB_HOST": "postgresql://u:Secr3t-pw@h/db"})
    assert "Secr3t-pw" not in str(raised.value) and "MLFLOW_DB_HOST" in str(raised.value)


@pytest.mark.parametrize("given, host", [("[::1]", "::1"), ("::1", "::1"), ("db.internal", "db.internal"), ("10.0.0.5", "10.0.0.5")])
def test_ipv6_and_names_are_accepted_as_hosts(given, host):
    settings = entrypoint.load_settings({**BASE, "MLFLOW_DB_HOST": given})
    assert settings.db_host == host and make_url(settings.backend_store_uri).host == host


def test_password_file_that_is_not_utf8_is_a_setting_error(tmp_path):
    secret = tmp_path / "password"
    secret.write_bytes(b"S3cr3tPw\xff\xfe")
    with pytest.raises(entrypoint.SettingError, match="not UTF-8"):
        entrypoint.load_settings({**BASE, "MLFLOW_DB_PASSWORD_FILE": str(secret)})


def test_busy_port_is_a_setting_error_before_starting_the_server(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings = entrypoint.load_settings({**BASE, "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(busy.getsockname()[1])})
        with pytest.raises(entrypoint.SettingError, match="cannot listen on MLFLOW_HOST=127.0.0.1"):
            entrypoint.check_listen_address(settings)


def test_password_file_wins_and_is_read_without_its_newline(tmp_path):
    secret = tmp_path / "password"
    secret.write_text(NASTY_PASSWORD + "\n")
    settings = entrypoint.load_settings({**BASE, "MLFLOW_DB_PASSWORD": "other", "MLFLOW_DB_PASSWORD_FILE": str(secret)})
    assert settings.db_password == NASTY_PASSWORD


@pytest.mark.parametrize(
    "override, named",
    [
        ({"MLFLOW_DB_HOST": ""}, "MLFLOW_DB_HOST"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": ""}, "MLFLOW_ARTIFACTS_DESTINATION"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": "ftp://x/y"}, "MLFLOW_ARTIFACTS_DESTINATION"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": "s3://"}, "MLFLOW_ARTIFACTS_DESTINATION"),
        ({"MLFLOW_DB_PORT": "abc"}, "MLFLOW_DB_PORT"),
        ({"MLFLOW_DB_PORT": "70000"}, "MLFLOW_DB_PORT"),
        ({"MLFLOW_DB_SSLMODE": "sometimes"}, "MLFLOW_DB_SSLMODE"),
        ({"MLFLOW_WORKERS": "0"}, "MLFLOW_WORKERS"),
        ({"MLFLOW_AUTH": "maybe"}, "MLFLOW_AUTH"),
        ({"MLFLOW_AUTH": "true"}, "MLFLOW_ADMIN_PASSWORD"),
        ({"MLFLOW_AUTH": "true", "MLFLOW_ADMIN_PASSWORD": "short"}, "at least 12"),
        ({"MLFLOW_DB_PASSWORD_FILE": "/nonexistent/password"}, "MLFLOW_DB_PASSWORD_FILE"),
        ({"MLFLOW_AUTH_DEFAULT_PERMISSION": "ALL"}, "MLFLOW_AUTH_DEFAULT_PERMISSION"),
        ({"MLFLOW_ALLOWED_HOSTS": " , "}, "MLFLOW_ALLOWED_HOSTS"),
        ({"MLFLOW_DB_HOST": "127.0.0.1/x"}, "MLFLOW_DB_HOST"),
        ({"MLFLOW_DB_HOST": "127.0.0.1:5432"}, "MLFLOW_DB_HOST"),
        ({"MLFLOW_DB_HOST": "db?sslmode=disable"}, "MLFLOW_DB_HOST"),
        ({"MLFLOW_DB_HOST": "postgresql://u:p@h/db"}, "MLFLOW_DB_HOST"),
        ({"MLFLOW_DB_PASSWORD": "bad\udcff"}, "MLFLOW_DB_PASSWORD is not valid UTF-8"),
        ({"MLFLOW_S3_ENDPOINT_URL": "notaurl"}, "MLFLOW_S3_ENDPOINT_URL"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": "file://"}, "MLFLOW_ARTIFACTS_DESTINATION"),
    ],
)
def test_bad_settings_name_the_setting(override, named):
    with pytest.raises(entrypoint.SettingError, match=named) as raised:
        entrypoint.load_settings({**BASE, **override})
    assert raised.value.exit_code == entrypoint.EXIT_SETTINGS


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in entrypoint.SETTINGS if f"`{name}`" not in readme]
    assert not missing, f"README lacks {missing}"


# --------------------------------------------------------------------------- real processes



@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server with one bucket."""
    from devstack.s3 import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("moto") / "moto.log")
    server.client().create_bucket(Bucket="artifacts")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nasty_db(postgres):
    """A database owned by a role whose password holds every special character."""
    import psycopg
    from psycopg import sql

    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.uri(), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(NASTY_PASSWORD)))
        connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
    return {"MLFLOW_DB_HOST": "127.0.0.1", "MLFLOW_DB_PORT": str(postgres.port), "MLFLOW_DB_NAME": name, "MLFLOW_DB_USER": name, "MLFLOW_DB_PASSWORD": NASTY_PASSWORD}


def fresh_db(postgres) -> dict[str, str]:
    """Settings for a new empty database owned by the superuser."""
    name = f"db_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    return {"MLFLOW_DB_HOST": "127.0.0.1", "MLFLOW_DB_PORT": str(postgres.port), "MLFLOW_DB_NAME": name, "MLFLOW_DB_USER": "postgres", "MLFLOW_DB_PASSWORD": postgres.password}


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any S3 or MLflow settings, plus ``settings``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    return {**keep, "MLFLOW_WORKERS": "1", "MLFLOW_DB_WAIT_SECONDS": "20", **settings}


def run_entrypoint(command: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a one-shot entrypoint command (migrate, check)."""
    return subprocess.run([sys.executable, str(ENTRYPOINT), command], env=env, capture_output=True, text=True, timeout=timeout)


class Served:
    """``entrypoint.py serve`` as a process, on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**env, "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(self.port)}
        env.setdefault("MLFLOW_ALLOWED_HOSTS", f"mlflow,mlflow:5000,localhost,localhost:{self.port},127.0.0.1:{self.port}")
        try:
            self.process = start_service(
                [sys.executable, str(ENTRYPOINT), "serve"], log_path, lambda: requests.get(f"{self.url}/health", timeout=2).ok, "entrypoint serve", env
            )
        except RuntimeError as error:
            raise AssertionError(str(error)) from error

    def stop(self) -> None:
        stop_process_group(self.process)


@pytest.fixture(scope="module")
def s3_server(nasty_db, s3, tmp_path_factory):
    """The entrypoint serving on PostgreSQL (special-character password) with artifacts in S3."""
    log = tmp_path_factory.mktemp("served") / "server.log"
    served = Served(clean_env(**nasty_db, **s3.client_env(), MLFLOW_ARTIFACTS_DESTINATION="s3://artifacts/mlflow"), log)
    yield served
    served.stop()


@pytest.mark.slow
def test_client_without_bucket_credentials_uploads_100_mb_through_the_proxy(s3_server, s3, tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    for name in list(os.environ):
        if name.startswith("AWS_") or name == "MLFLOW_S3_ENDPOINT_URL":
            monkeypatch.delenv(name)
    big = tmp_path / "weights.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as out:
        for _ in range(100):
            out.write(block)
    digest = hashlib.md5(big.read_bytes()).hexdigest()
    client = MlflowClient(s3_server.url)
    experiment = client.create_experiment(f"proxy-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    mlflow.set_tracking_uri(s3_server.url)
    import time

    started = time.perf_counter()
    client.log_artifact(run.info.run_id, str(big))
    seconds = time.perf_counter() - started
    print(f"100 MiB artifact uploaded through the proxy in {seconds:.1f} s")
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)

    objects = s3.client().list_objects_v2(Bucket="artifacts", Prefix="mlflow/")["Contents"]
    landed = [o for o in objects if o["Key"].endswith(f"{run.info.run_id}/artifacts/weights.bin")]
    assert landed and landed[0]["Size"] == 100 * (1 << 20)
    body = s3.client().get_object(Bucket="artifacts", Key=landed[0]["Key"])["Body"].read()
    assert hashlib.md5(body).hexdigest() == digest
    assert client.get_run(run.info.run_id).data.metrics["m"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("host", ["mlflow", "mlflow:5000", "localhost", "127.0.0.1:{port}", "localhost:{port}"])
def test_health_and_api_answer_under_the_stack_host_headers(s3_server, host):
    headers = {"Host": host.format(port=s3_server.port)}
    for path in ("/health", SEARCH):
        assert requests.get(s3_server.url + path, headers=headers, timeout=30).status_code == 200, path


@pytest.mark.slow
def test_unknown_host_header_is_refused(s3_server):
    assert requests.get(s3_server.url + SEARCH, headers={"Host": "evil.example"}, timeout=30).status_code == 403


@pytest.mark.slow
def test_password_is_never_printed(s3_server):
    log = s3_server.log_path.read_text(errors="replace")
    assert "[mlflow-server] database postgresql://" in log and ":***@" in log
    for form in (NASTY_PASSWORD, requests.utils.quote(NASTY_PASSWORD, safe="")):
        assert form not in log
    args = Path(f"/proc/{s3_server.process.pid}/cmdline").read_bytes().decode(errors="replace")
    assert NASTY_PASSWORD not in args and requests.utils.quote(NASTY_PASSWORD, safe="") not in args


@pytest.mark.slow
def test_two_servers_started_at_once_on_an_empty_database_both_come_up(postgres, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    env = clean_env(**fresh_db(postgres), MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "artifacts"), MLFLOW_AUTH="true", MLFLOW_ADMIN_PASSWORD="x-Secret-1-long")
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda n: Served(env, tmp_path / f"server-{n}.log"), range(2)))
    try:
        logs = [s.log_path.read_text(errors="replace") for s in servers]
        assert sum("created the tracking schema" in log for log in logs) == 1, logs
        assert sum("already at" in log for log in logs) == 1, logs
        for served in servers:
            assert requests.get(served.url + SEARCH, auth=("admin", "x-Secret-1-long"), timeout=30).status_code == 200
    finally:
        for served in servers:
            served.stop()
    again = run_entrypoint("migrate", env)
    assert again.returncode == 0 and "already at" in again.stderr, again.stderr


@pytest.mark.slow
def test_basic_auth_users_survive_a_restart_and_health_needs_no_credentials(postgres, tmp_path):
    admin = ("admin", "Adm1n:p@ss/%")
    env = clean_env(
        **fresh_db(postgres),
        MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "artifacts"),
        MLFLOW_AUTH="true",
        MLFLOW_ADMIN_USERNAME=admin[0],
        MLFLOW_ADMIN_PASSWORD=admin[1],
    )
    served = Served(env, tmp_path / "auth-1.log")
    try:
        assert requests.get(f"{served.url}/health", timeout=30).status_code == 200
        assert requests.get(served.url + SEARCH, timeout=30).status_code == 401
        assert requests.get(served.url + SEARCH, auth=admin, timeout=30).status_code == 200
        created = requests.post(f"{served.url}/api/2.0/mlflow/users/create", json={"username": "alice", "password": "al1ce-passw0rd"}, auth=admin, timeout=30)
        assert created.status_code == 200, created.text
    finally:
        served.stop()
    served = Served(env, tmp_path / "auth-2.log")
    try:
        assert requests.get(served.url + SEARCH, auth=("alice", "al1ce-passw0rd"), timeout=30).status_code == 200
        assert requests.get(served.url + SEARCH, auth=("alice", "wrong"), timeout=30).status_code == 401
    finally:
        served.stop()


@pytest.mark.slow
def test_missing_bucket_fails_fast_naming_the_setting(nasty_db, s3):
    result = run_entrypoint("serve", clean_env(**nasty_db, **s3.client_env(), MLFLOW_ARTIFACTS_DESTINATION="s3://no-such-bucket/x"))
    assert result.returncode == entrypoint.EXIT_ARTIFACTS
    assert "MLFLOW_ARTIFACTS_DESTINATION=s3://no-such-bucket/x" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_unwritable_local_destination_fails_fast(nasty_db, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_entrypoint("check", clean_env(**nasty_db, MLFLOW_ARTIFACTS_DESTINATION=str(blocker / "artifacts")))
    assert result.returncode == entrypoint.EXIT_ARTIFACTS and "MLFLOW_ARTIFACTS_DESTINATION" in result.stderr


@pytest.mark.slow
def test_unreachable_database_gives_up_after_the_bounded_wait(tmp_path):
    env = clean_env(MLFLOW_DB_HOST="127.0.0.1", MLFLOW_DB_PORT=str(free_port()), MLFLOW_DB_WAIT_SECONDS="3", MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path))
    result = run_entrypoint("migrate", env, timeout=60)
    assert result.returncode == entrypoint.EXIT_DATABASE
    assert "unreachable after" in result.stderr and "MLFLOW_DB_WAIT_SECONDS" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_wrong_database_password_is_reported_without_retrying_or_printing_it(nasty_db, tmp_path):
    result = run_entrypoint("migrate", clean_env(**{**nasty_db, "MLFLOW_DB_PASSWORD": "Wr0ng!pass"}, MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path)))
    assert result.returncode == entrypoint.EXIT_DATABASE and "password authentication failed" in result.stderr
    assert "Wr0ng!pass" not in result.stderr
