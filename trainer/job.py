"""One training job inside one MLflow run: load, train, evaluate, log, register."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, fields

import mlflow
import torch
from mlflow.tracking import MlflowClient

from alexnet_cifar.model import AlexNet, count_parameters
from trainer import hostinfo, tracking
from trainer.data import subset, timed_load
from trainer.train import EpochResult, TrainSettings, prepare_model, seed_everything, train


@dataclass(frozen=True)
class Summary:
    """The headline numbers of a finished run, as logged to MLflow."""

    run_id: str
    metrics: dict[str, float]
    model_version: str | None
    promoted: bool

    def __str__(self) -> str:
        lines = [f"run {self.run_id} finished"]
        for name in ("data_load_time", "training_time", "runtime", "test_loss", "test_accuracy"):
            lines.append(f"  {name:<16} {self.metrics[name]:.4f}")
        if self.model_version:
            lines.append(f"  registered version {self.model_version}" + (" (now champion)" if self.promoted else " (champion unchanged)"))
        return "\n".join(lines)


def settings_from(args: argparse.Namespace) -> TrainSettings:
    """The training settings the command line asks for (options share the settings' names)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainSettings) if hasattr(args, f.name)}
    return TrainSettings(**given, progress=not args.no_progress and sys.stdout.isatty())


def _start_run(args: argparse.Namespace):
    mlflow.set_experiment(tracking.experiment_name())
    return mlflow.start_run(run_name=args.run_name or f"alexnet-{args.cloud}-{time.strftime('%Y%m%d-%H%M%S')}")


def run_job(args: argparse.Namespace, started: float) -> Summary:
    """Run the whole job in one MLflow run: FINISHED on success, KILLED when
    interrupted (Ctrl-C, SIGTERM), FAILED if anything else raises."""
    threads = args.threads or hostinfo.usable_cpus()
    torch.set_num_threads(threads)
    settings = settings_from(args)
    with _start_run(args) as run:
        try:
            return _train_and_log(args, run.info.run_id, settings, threads, started)
        except (KeyboardInterrupt, SystemExit):
            mlflow.end_run("KILLED")
            raise


def _train_and_log(args: argparse.Namespace, run_id: str, settings: TrainSettings, threads: int, started: float) -> Summary:
    """Load, train, evaluate, log and register inside the active run `run_id`."""
    client = MlflowClient()
    mlflow.set_tags(tracking.host_tags(args.cloud, args.training_run))
    options = {key: ("" if value is None else str(value)) for key, value in vars(args).items()}
    mlflow.log_params({**options, "torch_version": torch.__version__, "mlflow_version": mlflow.__version__, "num_threads": threads})

    dataset, data_load_time = timed_load(args.data, args.cache_dir, args.download_url, progress=settings.progress, use_cache=not args.no_cache)
    x_train, y_train = subset(dataset.x_train, dataset.y_train, args.train_subset, args.seed)
    x_test, y_test = subset(dataset.x_test, dataset.y_test, args.test_subset, args.seed)
    mlflow.log_params(
        {
            "data_source": dataset.source,
            "data_format": dataset.source_format,
            "data_from_cache": dataset.from_cache,
            "train_size": len(x_train),
            "test_size": len(x_test),
        }
    )
    mlflow.log_metric("data_load_time", data_load_time)

    seed_everything(args.seed)
    model = prepare_model(AlexNet(dropout=args.dropout, batch_norm=args.batch_norm), settings)
    mlflow.log_param("parameter_count", count_parameters(model))
    log_epoch = tracking.EpochLogger(client, run_id)

    def on_epoch(result: EpochResult) -> None:
        log_epoch(result)
        print(f"epoch {result.epoch}/{settings.epochs} " + " ".join(f"{k}={v:.4g}" for k, v in result.metrics().items()), flush=True)

    print(f"training on {len(x_train)} images, testing on {len(x_test)}, {threads} threads, {settings.precision}", flush=True)
    epochs = train(model, x_train, y_train, x_test, y_test, settings, on_epoch=on_epoch)

    final = epochs[-1]  # always evaluated: its test metrics are the run's
    training_time = sum(e.epoch_time for e in epochs)
    metrics = {
        "data_load_time": data_load_time,
        "training_time": training_time,
        "test_loss": final.test_loss,
        "test_accuracy": final.test_accuracy,
        "eval_time": sum(e.eval_time or 0.0 for e in epochs),
        "train_images_per_second": len(x_train) * len(epochs) / training_time,
        "tracking_time": log_epoch.seconds,
    }
    # test_loss and test_accuracy are already logged per epoch; their latest
    # value (the last epoch's) is the run-level figure MLflow shows.
    mlflow.log_metrics({k: v for k, v in metrics.items() if k not in ("test_loss", "test_accuracy", "data_load_time")})
    info = tracking.log_model(model, x_test[: min(8, len(x_test))], final.predictions.numpy())
    tracking.log_samples(x_test, y_test)
    version, promoted = (None, False)
    if not args.no_register:
        version, promoted = tracking.register(info.model_uri, args.register_as, run_id, final.test_accuracy)
        mlflow.set_tags({"registered_model": args.register_as, "registered_version": version, "champion": str(promoted).lower()})
    metrics["runtime"] = time.perf_counter() - started
    mlflow.log_metric("runtime", metrics["runtime"])
    return Summary(run_id, metrics, version, promoted)
