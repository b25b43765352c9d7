"""An S3 endpoint on loopback (moto's server), for the tests and a laptop without MinIO."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.procs import free_port, start_service, stop_process_group

#: moto accepts any credentials; these are the well-known placeholders, not secrets.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass
class S3Server:
    """A running moto S3 server."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def client_env(self) -> dict[str, str]:
        """What a boto3 client (or the tracking server) needs to reach this endpoint."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):
        """A boto3 S3 client for this endpoint."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
        )

    def stop(self) -> None:
        """Stop the server."""
        stop_process_group(self.process)


def start_s3_server(log_path: Path, port: int = 0) -> S3Server:
    """Start ``moto_server`` on 127.0.0.1 and wait until it answers."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_service(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path,
        lambda: requests.get(f"{url}/moto-api/", timeout=2).ok,
        "moto server",
        timeout=60,
    )
    return S3Server(url, process, log_path)
