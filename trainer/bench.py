"""``python -m trainer.bench``: training throughput for each precision option.

Runs the real training loop (augmentation and optimizer included, MLflow
excluded) on in-memory uint8 batches and reports images per second and the
seconds a full 50,000-image epoch would take. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from alexnet_cifar.model import AlexNet
from trainer import hostinfo
from trainer.train import TrainSettings, prepare_model, seed_everything, train

FULL_EPOCH = 50_000
CONFIGS = {
    "fp32": dict(precision="fp32", channels_last=False),
    "fp32-channels-last": dict(precision="fp32", channels_last=True),
    "bf16": dict(precision="bf16", channels_last=False),
    "bf16-channels-last": dict(precision="bf16", channels_last=True),
}


def measure(config: dict, images: np.ndarray, labels: np.ndarray, batch_size: int, threads: int) -> float:
    """Images per second of one training epoch over ``images`` (after a warm-up)."""
    torch.set_num_threads(threads)
    seed_everything(0)
    model = AlexNet()
    settings = TrainSettings(epochs=1, batch_size=batch_size, eval_every=1, **config)
    model = prepare_model(model, settings)
    probe = images[:batch_size], labels[:batch_size]
    train(model, *probe, *probe, settings)  # warm-up: allocator, oneDNN kernels
    result = train(model, images, labels, *probe, settings)[0]
    return result.images_per_second


def main(argv: list[str] | None = None) -> int:
    """Run every configuration and print a table; write the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m trainer.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5120, help="training images per configuration (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=TrainSettings().batch_size, help="default %(default)s")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = usable CPUs)")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS), help="which configurations")
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"), help="JSON output (default %(default)s)")
    args = parser.parse_args(argv)
    if args.images < args.batch_size:
        parser.error("--images must be at least --batch-size")

    threads = args.threads or hostinfo.usable_cpus()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images).astype(np.int64)
    results = {}
    print(f"{platform.processor() or hostinfo.cpu_model()}: {threads} threads, batch {args.batch_size}, {args.images} images per configuration")
    print(f"{'configuration':<22} {'images/s':>9} {'s per 50k epoch':>16}")
    for name in args.configs:
        rate = measure(CONFIGS[name], images, labels, args.batch_size, threads)
        results[name] = {"images_per_second": round(rate, 1), "seconds_per_epoch": round(FULL_EPOCH / rate, 1)}
        print(f"{name:<22} {rate:>9.0f} {FULL_EPOCH / rate:>16.1f}", flush=True)
    report = {
        "cpu_model": hostinfo.cpu_model(),
        "usable_cpus": hostinfo.usable_cpus(),
        "threads": threads,
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "images": args.images,
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
