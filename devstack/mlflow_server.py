"""Run ``mlflow server`` as a child process and wait until it answers ``/health``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.procs import free_port, start_service, stop_process_group


@dataclass
class MlflowServer:
    """A running tracking server; ``stop()`` ends it and its workers."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Stop the server and its worker processes."""
        stop_process_group(self.process)

    def __enter__(self) -> "MlflowServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_mlflow_server(
    backend_store_uri: str,
    artifacts_destination: str,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 1,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> MlflowServer:
    """Start a tracking server that proxies artifacts, so clients need no store credentials."""
    port = port or free_port(host)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination,
        "--serve-artifacts",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    url = f"http://{host}:{port}"
    process = start_service(
        command, log_path, lambda: requests.get(f"{url}/health", timeout=2).ok, "mlflow server", {**os.environ, **(env or {})}, timeout=timeout
    )
    return MlflowServer(url, process, log_path)
