"""Prometheus metrics of the inference service.

Under gunicorn every worker is a process; with ``PROMETHEUS_MULTIPROC_DIR`` set
(``serving/gunicorn.conf.py`` sets it), ``/metrics`` adds up all workers.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REQUESTS = Counter("serving_requests_total", "HTTP requests by endpoint, method and status", ["endpoint", "method", "status"])
LATENCY = Histogram(
    "serving_request_seconds",
    "request latency by endpoint",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PREDICTED_IMAGES = Counter("serving_predicted_images_total", "images classified")
MODEL_VERSION = Gauge("serving_model_version", "registered version of the model being served", multiprocess_mode="max")


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
