"""gunicorn settings of the inference service, sized to the CPUs the container may use.

    gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'

Workers x torch threads = usable CPUs (cgroup quota honoured): on 2 cores two
workers with one torch thread each serve many times the requests of one worker
with two threads. Every value can be overridden with the variables below.
"""

import os
import shutil
import tempfile

from alexnet_cifar.cpus import usable_cpus

_cpus = usable_cpus()


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"error: {name} must be a positive integer, not {raw!r}")
    return int(raw)


bind = os.environ.get("SERVING_BIND", "0.0.0.0:8080")
workers = _positive("SERVING_WORKERS", _cpus)
threads = _positive("SERVING_THREADS", 2)  # request threads per worker (I/O overlap)
worker_class = "gthread"
timeout = _positive("SERVING_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 65  # above the cloud load balancers' 60 s idle timeout
preload_app = False  # each worker loads the model itself, after the fork
accesslog = os.environ.get("SERVING_ACCESS_LOG") or None
torch_threads = _positive("TORCH_THREADS", max(1, _cpus // workers))

# /metrics adds up every worker's counters through this folder.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="serving-metrics-"))
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def post_fork(server, worker):
    """Limit torch to its share of the CPUs before the model is loaded."""
    import torch

    torch.set_num_threads(torch_threads)
    torch.set_num_interop_threads(1)


def child_exit(server, worker):
    """Drop a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder if we created it."""
    if _metrics_dir.startswith(tempfile.gettempdir()) and "serving-metrics-" in _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
