"""``make bench-serving``: requests per second and latency of ``POST /predict`` under gunicorn.

Registers an AlexNet (same layout, export format and signature as the trainer's;
untrained, since the weights do not change the cost) in a throw-away local
tracking server, starts the service with its production gunicorn config, and
drives it from concurrent keep-alive clients on loopback with one real 32x32
image per request. A benchmark, not a test: the client shares the CPUs with
the server, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from devstack.mlflow_server import start_mlflow_server
from devstack.procs import children_rss_mib
from devstack.serving import start_serving

MODEL = "alexnet-bench"


def register_model(tracking_uri: str) -> None:
    """Log and register an AlexNet the way the trainer does."""
    import mlflow
    import torch

    from alexnet_cifar.model import AlexNet
    from trainer import tracking

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("bench-serving")
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    with mlflow.start_run() as run:
        info = tracking.log_model(AlexNet(), images, np.zeros(8, dtype=np.int64))
        tracking.log_samples(images, np.zeros(8, dtype=np.int64))
        tracking.register(info.model_uri, MODEL, run.info.run_id, 0.0)


def png_bytes() -> bytes:
    """A 32x32 RGB PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def load(port: int, clients: int, seconds: float, body: bytes) -> dict:
    """``clients`` keep-alive connections posting ``body`` for ``seconds``; latency percentiles in ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients  # anything but a 200, connection failures included
    server_errors = [0] * clients  # 5xx answers
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies[n].append(time.perf_counter() - started)
            errors[n] += response.status != 200
            server_errors[n] += response.status >= 500
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = np.array([x for per in latencies for x in per]) * 1000
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": int(every.size),
        "errors": int(sum(errors)),
        "server_errors": int(sum(server_errors)),
        "requests_per_second": round(every.size / elapsed, 1),
        "p50_ms": round(float(np.percentile(every, 50)), 2),
        "p99_ms": round(float(np.percentile(every, 99)), 2),
    }


WRK_SCRIPT = """
local file = io.open("{body}", "rb")
wrk.method = "POST"
wrk.body = file:read("*all")
wrk.headers["Content-Type"] = "image/png"
file:close()
"""


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 2)


def load_wrk(port: int, clients: int, seconds: float, body: bytes, folder: Path) -> dict:
    """The same load from wrk (C, two threads): the client takes far less CPU from the server."""
    (folder / "body.png").write_bytes(body)
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=folder / "body.png"))
    command = ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds:g}s", "--latency", "-s", str(script),
               f"http://127.0.0.1:{port}/predict"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "client": "wrk",
        "clients": clients,
        "seconds": seconds,
        "requests": requests_done,
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        # wrk counts 4xx and 5xx together: this is an upper bound.
        "server_errors": int(errors.group(1)) if errors else 0,
        "requests_per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1),
        "p50_ms": _milliseconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": _milliseconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s; the load test uses 32)")
    parser.add_argument("--seconds", type=float, default=20, help="duration (default %(default)s; make load: 30)")
    parser.add_argument("--workers", default="", help="gunicorn workers (default: the service's own sizing)")
    parser.add_argument("--torch-threads", default="", help="torch threads per worker (default: the service's own sizing)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto", help="load generator: wrk if installed (Debian's wrk), else Python threads")
    parser.add_argument("--output", type=Path, default=Path("bench-serving.json"), help="JSON output (default %(default)s)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 1024:
        parser.error("--clients must be between 1 and 1024")
    if not 1 <= args.seconds <= 3600:  # also refuses nan and inf
        parser.error("--seconds must be between 1 and 3600")
    for name in ("workers", "torch_threads"):
        value = getattr(args, name)
        if value and not (value.isdigit() and 1 <= int(value) <= 64):
            parser.error(f"--{name.replace('_', '-')} must be a whole number from 1 to 64")
    if not args.output.parent.is_dir():
        parser.error(f"--output: folder {args.output.parent} does not exist")

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    server = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", str(work / "artifacts"), work / "mlflow.log")
    serving = None
    try:
        print("registering the model...", flush=True)
        register_model(server.url)
        settings = {"MLFLOW_TRACKING_URI": server.url, "MODEL_NAME": MODEL, "SERVING_WORKERS": args.workers,
                    "TORCH_THREADS": args.torch_threads, "MODEL_POLL_SECONDS": "0"}  # fmt: skip
        try:
            serving = start_serving(settings, work / "gunicorn.log", timeout=300)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        port = serving.port
        body = png_bytes()
        load(port, args.clients, 2, body)  # warm-up: every worker has run the model
        memory_before = children_rss_mib(serving.process.pid)
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        if use_wrk:
            result = load_wrk(port, args.clients, args.seconds, body, work)
        else:
            result = {"client": "python", **load(port, args.clients, args.seconds, body)}
        from alexnet_cifar.cpus import usable_cpus

        memory_after = children_rss_mib(serving.process.pid)
        result.update(
            usable_cpus=usable_cpus(), workers=args.workers or "auto", torch_threads=args.torch_threads or "auto",
            worker_rss_mib_before=sorted(round(v, 1) for v in memory_before.values()),
            worker_rss_mib_after=sorted(round(v, 1) for v in memory_after.values()),
            workers_replaced=len(set(memory_before) - set(memory_after)),
        )  # fmt: skip
        print(json.dumps(result, indent=2))
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.output}")
        return 0 if result["errors"] == 0 else 1
    finally:
        if serving is not None:
            serving.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
