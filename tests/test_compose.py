"""docker-compose.yml and the Dockerfiles, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.paths import REPO_ROOT
from serving.app import SETTINGS as SERVING_SETTINGS
from tests.test_mlflow_server import entrypoint
from trainer.cli import EPILOG as TRAINER_EPILOG

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILES = [REPO_ROOT / "mlflow-server/Dockerfile", REPO_ROOT / "trainer/Dockerfile", REPO_ROOT / "serving/Dockerfile"]
TRAINER_ENV = set(re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", TRAINER_EPILOG)) | {"GIT_COMMIT"}
CLIENT_CREDENTIALS = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"}
LIBRARY_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by boto3 itself


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_every_build_context_and_dockerfile_exists(compose):
    built = {name: s["build"] for name, s in compose["services"].items() if "build" in s}
    assert set(built) == {"mlflow", "trainer", "serving"}
    for name, build in built.items():
        context = REPO_ROOT / build["context"]
        assert context.is_dir() and (context / build["dockerfile"]).is_file(), name


def test_every_setting_the_entrypoints_read_is_provided_and_nothing_unknown(compose):
    services = compose["services"]
    server = env(services["mlflow"])
    assert {"MLFLOW_DB_HOST", "MLFLOW_ARTIFACTS_DESTINATION", "MLFLOW_S3_ENDPOINT_URL"} <= set(server)
    assert "MLFLOW_DB_PASSWORD_FILE" in server and "MLFLOW_DB_PASSWORD" not in server
    assert set(server) - set(entrypoint.SETTINGS) - LIBRARY_ENV == set()
    assert set(env(services["trainer"])) - TRAINER_ENV == set()
    assert set(env(services["serving"])) - set(SERVING_SETTINGS) - CLIENT_CREDENTIALS == set()
    for client in ("trainer", "serving"):
        assert env(services[client])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_the_tracking_server_allows_its_compose_names(compose):
    hosts = env(compose["services"]["mlflow"])["MLFLOW_ALLOWED_HOSTS"].split(",")
    assert {"mlflow", "mlflow:5000", "localhost"} <= set(hosts)


def test_start_order_waits_for_health_and_completion(compose):
    services = compose["services"]
    depends = {name: {k: v["condition"] for k, v in (s.get("depends_on") or {}).items()} for name, s in services.items()}
    assert depends["mlflow"] == {"postgres": "service_healthy", "create-bucket": "service_completed_successfully"}
    assert depends["create-bucket"] == {"minio": "service_healthy"}
    assert depends["trainer"] == {"mlflow": "service_healthy"}
    assert depends["serving"]["trainer"] == "service_completed_successfully"
    for name in ("postgres", "minio", "mlflow", "serving"):
        assert services[name]["healthcheck"]["test"], name
    assert services["trainer"]["restart"] == services["create-bucket"]["restart"] == "no"


def test_only_mlflow_and_serving_are_published(compose):
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"mlflow", "serving"}
    assert "ports" not in compose["services"]["postgres"]


def test_no_secret_literal_in_the_compose_file(compose):
    for name, service in compose["services"].items():
        for key, value in env(service).items():
            if re.search(r"PASSWORD|SECRET", key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{[A-Z_]+(:?[?-][^}]*)?\}", value), f"{name}.{key} holds a literal: {value!r}"
    assert set(compose["secrets"]) == {"db_password", "mlflow_admin_password"}
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().split()


def test_env_example_names_every_variable_the_compose_file_uses(compose):
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = dict(line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    assert used <= set(example), used - set(example)
    for key, value in example.items():
        if "PASSWORD" in key:
            assert value.startswith("change-me"), f"{key} in .env.example looks like a real secret"


def test_the_plain_process_runs_use_the_same_setting_names(compose):
    # tests/test_mlflow_server.py and tests/test_serving_live.py start the same entrypoints with these names.
    tests = (Path(__file__).parent / "test_mlflow_server.py").read_text() + (Path(__file__).parent / "test_serving_live.py").read_text()
    for name in ("MLFLOW_DB_HOST", "MLFLOW_ARTIFACTS_DESTINATION", "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_AUTH", "MODEL_NAME"):
        assert name in tests and (name in env(compose["services"]["mlflow"]) or name in env(compose["services"]["serving"]))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_as_non_root_with_pinned_packages_and_no_secrets(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    requirements = dockerfile.parent / "requirements.txt"
    pins = [line for line in requirements.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), pins
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\s*=", text.replace("PIP_", "")), "a secret in the image"
    if "torch==" in requirements.read_text():
        assert "download.pytorch.org/whl/cpu" in text, "torch must come from the CPU-only index"


def test_serving_image_needs_only_the_shared_module():
    text = (REPO_ROOT / "serving/Dockerfile").read_text()
    copied = re.findall(r"^COPY\s+(\S+)", text, re.M)
    assert "alexnet_cifar/" in copied and not any(c.startswith("trainer") for c in copied)
    imported = set(re.findall(r"^(?:from|import) (\w+)", "".join(p.read_text() for p in (REPO_ROOT / "serving").glob("*.py")), re.M))
    assert "trainer" not in imported and "devstack" not in imported
