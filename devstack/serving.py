"""Run the inference service under gunicorn with its production config, as a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.paths import REPO_ROOT
from devstack.procs import free_port, start_service, stop_process_group


@dataclass
class ServingProcess:
    """A running gunicorn serving ``serving.app:create_app()``."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Stop gunicorn and its workers."""
        stop_process_group(self.process)


def start_serving(settings: dict[str, str], log_path: Path, timeout: float = 240) -> ServingProcess:
    """Start gunicorn on a free loopback port with ``settings`` (MLFLOW_TRACKING_URI, MODEL_NAME, ...) and wait for /readyz."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_service(
        [sys.executable, "-m", "gunicorn", "-c", "serving/gunicorn.conf.py", "serving.app:create_app()"],
        log_path,
        lambda: requests.get(f"{url}/readyz", timeout=2).ok,
        "gunicorn",
        env={**os.environ, **settings, "SERVING_BIND": f"127.0.0.1:{port}"},
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    return ServingProcess(url, port, process, log_path)
