"""``python -m trainer``: train AlexNet on CIFAR-10 and record everything in MLflow."""

from __future__ import annotations

import argparse
import math
import os
import re
import urllib.parse
import signal
import sys
import time
from pathlib import Path

from trainer.data import CANONICAL_URL, DataError
from trainer.train import PRECISIONS, ResumeError, TrainSettings

DEFAULT_CACHE = Path.home() / ".cache" / "mlflow-multicloud" / "cifar10"

EPILOG = """\
environment:
  MLFLOW_TRACKING_URI      tracking server (default: MLflow's local store in the current folder)
  MLFLOW_EXPERIMENT_NAME   experiment (default: alexnet-cifar10)
  MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD   basic-auth credentials
  CIFAR10_DATA, CIFAR10_CACHE, CIFAR10_URL, CLOUD, TRAINING_RUN, TRAINER_RUN_KEY   defaults of the options above
  MLFLOW_HTTP_REQUEST_MAX_RETRIES (6), _BACKOFF_FACTOR (1), _TIMEOUT (60 s)   how long an unreachable
                           tracking server is retried (about a minute) before the trainer exits with 3

exit codes: 0 done (or already finished under --run-key), 2 bad data, options or checkpoint,
            3 tracking server unusable, 130/143 interrupted
"""


#: MLflow's HTTP retries, bounded: connection failures are retried for about a minute
#: (back-off 0, 2, 4, 8, 16, 32 s), a silent server is given 60 s per request. MLflow's own
#: defaults wait about four minutes. Set any of these variables to override.
TRACKING_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


#: Run keys go into an MLflow search filter, so they are limited to characters that need no quoting.
RUN_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,249}")


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option is also logged as an MLflow param."""
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train AlexNet on CIFAR-10, log metrics, params, tags and the model to MLflow, and register it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        default=os.environ.get("CIFAR10_DATA") or None,
        help="cifar-10-python.tar.gz, its cifar-10-batches-py/ folder, or an image tree {train,test}/<class>/*.jpg|png "
        "as a folder or .tar.gz (env CIFAR10_DATA; default: download the canonical archive)",
    )
    data.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("CIFAR10_CACHE") or DEFAULT_CACHE),
        help="where downloads and decoded arrays are cached (env CIFAR10_CACHE; default %(default)s)",
    )
    data.add_argument("--download-url", default=os.environ.get("CIFAR10_URL") or CANONICAL_URL, help="canonical archive URL (env CIFAR10_URL)")
    data.add_argument("--no-cache", action="store_true", help="decode the source again and do not write the cache")
    data.add_argument("--train-subset", type=int, default=0, metavar="N", help="train on a seeded random N images (0 = all 50,000)")
    data.add_argument("--test-subset", type=int, default=0, metavar="N", help="evaluate on a seeded random N images (0 = all 10,000)")

    hyper = parser.add_argument_group("training")
    hyper.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training split (default %(default)s)")
    hyper.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per step (default %(default)s)")
    hyper.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate of the one-cycle schedule (default %(default)s)")
    hyper.add_argument("--momentum", type=float, default=defaults.momentum, help="SGD Nesterov momentum (default %(default)s)")
    hyper.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="L2 weight decay (default %(default)s)")
    hyper.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing, help="training-loss label smoothing (default %(default)s)")
    hyper.add_argument("--dropout", type=float, default=0.1, help="dropout before the fully connected layers (default %(default)s)")
    hyper.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True, help="batch normalisation after each convolution (default on)")
    hyper.add_argument("--crop-padding", type=int, default=defaults.crop_padding, help="random-crop padding in pixels, 0 = off (default %(default)s)")
    hyper.add_argument("--flip", action=argparse.BooleanOptionalAction, default=defaults.flip, help="random horizontal flips (default on)")
    hyper.add_argument("--eval-every", type=int, default=defaults.eval_every, metavar="N", help="evaluate on the test split every N epochs and at the end (default %(default)s)")
    hyper.add_argument("--seed", type=int, default=defaults.seed, help="seed for initialisation, shuffling, augmentation, dropout (default %(default)s)")

    speed = parser.add_argument_group("execution")
    speed.add_argument("--precision", choices=PRECISIONS, default=defaults.precision, help="bf16 = bfloat16 autocast for training steps (default %(default)s); evaluation is always fp32")
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last, help="channels-last memory format (default on)")
    speed.add_argument("--threads", type=int, default=0, help="torch threads (0 = the CPUs this process may use, honouring cgroup quotas)")
    speed.add_argument("--no-progress", action="store_true", help="no progress bars (they are off anyway when stdout is not a terminal)")

    mlf = parser.add_argument_group("MLflow")
    mlf.add_argument("--register-as", default="alexnet-cifar10", help="registered model name (default %(default)s)")
    mlf.add_argument("--no-register", action="store_true", help="log the model but do not register it")
    mlf.add_argument("--cloud", default=os.environ.get("CLOUD") or "local", help="value of the run's 'cloud' tag (env CLOUD; default %(default)s)")
    mlf.add_argument("--training-run", default=os.environ.get("TRAINING_RUN") or None, help="value of the run's 'trainingRun' tag (env TRAINING_RUN)")
    mlf.add_argument("--run-name", default=None, help="MLflow run name (default alexnet-<cloud>-<time>)")

    resume = parser.add_argument_group("resume")
    resume.add_argument(
        "--run-key",
        default=os.environ.get("TRAINER_RUN_KEY") or None,
        help="stable identity of this run (env TRAINER_RUN_KEY; the Kubernetes Job passes its own uid): started again with "
        "the same key, the trainer continues that run from its last checkpoint, and a finished run is not repeated",
    )
    resume.add_argument("--no-checkpoint", action="store_true", help="do not save a checkpoint artifact after each epoch")
    resume.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoint artifacts after the model is logged (default: delete them)")
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name in ("epochs", "batch_size", "eval_every"):
        if getattr(args, name) < 1:
            parser.error(f"{option(name)} must be at least 1")
    for name in ("train_subset", "test_subset", "threads", "crop_padding"):
        if getattr(args, name) < 0:
            parser.error(f"{option(name)} must not be negative")
    for name in ("lr", "momentum", "weight_decay", "dropout", "label_smoothing"):
        if not math.isfinite(getattr(args, name)):
            parser.error(f"{option(name)} must be a finite number")
    if args.lr <= 0:
        parser.error("--lr must be positive")
    if args.momentum < 0 or args.weight_decay < 0:
        parser.error("--momentum and --weight-decay must not be negative")
    if not 0 <= args.dropout < 1 or not 0 <= args.label_smoothing < 1:
        parser.error("--dropout and --label-smoothing must be in [0, 1)")
    if not 0 <= args.seed < 2**32:
        parser.error("--seed must be in 0..4294967295")
    if args.crop_padding > 32:
        parser.error("--crop-padding must be at most 32 pixels (the images are 32x32)")
    if args.threads > 256:
        parser.error("--threads must be at most 256")
    if args.batch_size > 65536:
        parser.error("--batch-size must be at most 65536")
    if urllib.parse.urlparse(args.download_url).scheme not in ("http", "https", "file"):
        parser.error("--download-url must be an http, https or file URL")
    try:
        urllib.parse.urlparse(os.environ.get("MLFLOW_TRACKING_URI", "")).port
    except ValueError as error:
        parser.error(f"MLFLOW_TRACKING_URI is not a valid URI ({error})")
    if args.cache_dir.exists() and not args.cache_dir.is_dir():
        parser.error(f"--cache-dir {args.cache_dir} is a file, not a folder")
    if args.run_key is not None and not RUN_KEY_PATTERN.fullmatch(args.run_key):
        parser.error("--run-key must be 1-250 letters, digits or ._:/- and start with a letter or digit")
    if not args.no_register:
        from mlflow.exceptions import MlflowException
        from mlflow.utils.validation import _validate_model_name

        try:
            _validate_model_name(args.register_as)
        except MlflowException as error:
            parser.error(f"--register-as: {error.message}")
        if any(c in args.register_as for c in "/%:?#"):
            parser.error("--register-as must not contain / % : ? # (it becomes part of models:/ URIs)")


def _raise_on_sigterm(signum, frame):
    # Kubernetes stops pods with SIGTERM; turning it into an exception lets the
    # MLflow run end as FAILED instead of staying RUNNING forever.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the job; return the process exit code."""
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    for name, value in TRACKING_RETRIES.items():
        os.environ.setdefault(name, value)

    # Heavy imports after argument parsing, so --help and usage errors are instant.
    import mlflow
    import requests
    from mlflow.exceptions import MlflowException

    from trainer.job import run_job

    try:
        summary = run_job(args, started)
    except (DataError, ResumeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (MlflowException, requests.exceptions.RequestException) as error:
        print(f"error: the MLflow tracking server at {mlflow.get_tracking_uri()} failed: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; the MLflow run was marked KILLED", file=sys.stderr)
        return 130
    print(summary)
    return 0
