"""One training job inside one MLflow run: load, train, evaluate, log, register."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, fields, replace

import mlflow
import torch
from mlflow.tracking import MlflowClient

from alexnet_cifar.model import AlexNet, count_parameters
from trainer import checkpoint, hostinfo, tracking
from trainer.data import subset, timed_load
from trainer.train import EpochResult, ResumeError, TrainSettings, check_resumable, evaluate, prepare_model, seed_everything, train


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
            if name in self.metrics:
                lines.append(f"  {name:<16} {self.metrics[name]:.4f}")
        if self.model_version:
            lines.append(f"  registered version {self.model_version}" + (" (now champion)" if self.promoted else " (champion unchanged)"))
        return "\n".join(lines)


def settings_from(args: argparse.Namespace) -> TrainSettings:
    """The training settings the command line asks for (options share the settings' names)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainSettings) if hasattr(args, f.name)}
    return TrainSettings(**given, progress=not args.no_progress and sys.stdout.isatty())


@dataclass(frozen=True)
class Attempt:
    """Which run this process works in, and what an earlier attempt of it left behind."""

    run_id: str
    resumed: bool
    finished: bool = False


def _open_run(args: argparse.Namespace) -> Attempt:
    """A new run, or with ``--run-key`` the run an earlier attempt started under that key."""
    client = MlflowClient()
    experiment = mlflow.set_experiment(tracking.experiment_name())
    existing = checkpoint.find_run(client, experiment.experiment_id, args.run_key) if args.run_key else None
    if existing is not None and existing.info.status == "FINISHED":
        return Attempt(existing.info.run_id, resumed=True, finished=True)
    if existing is not None:
        attempts = int(existing.data.tags.get(checkpoint.ATTEMPTS_TAG, "1")) + 1
        mlflow.start_run(run_id=existing.info.run_id)
        mlflow.set_tag(checkpoint.ATTEMPTS_TAG, str(attempts))
        print(f"resuming run {existing.info.run_id} (key {args.run_key}, attempt {attempts})", flush=True)
        return Attempt(existing.info.run_id, resumed=True)
    tags = {checkpoint.RUN_KEY_TAG: args.run_key, checkpoint.ATTEMPTS_TAG: "1"} if args.run_key else {}
    run = mlflow.start_run(run_name=args.run_name or f"alexnet-{args.cloud}-{time.strftime('%Y%m%d-%H%M%S')}", tags=tags)
    return Attempt(run.info.run_id, resumed=False)


def run_job(args: argparse.Namespace, started: float) -> Summary:
    """Run the whole job in one MLflow run: FINISHED on success, KILLED when
    interrupted (Ctrl-C, SIGTERM), FAILED if anything else raises. With a run
    key, a run that already finished is reported, not repeated."""
    threads = args.threads or hostinfo.usable_cpus()
    torch.set_num_threads(threads)
    settings = settings_from(args)
    attempt = _open_run(args)
    if attempt.finished:
        return _finished_summary(attempt.run_id)
    with mlflow.active_run() as run:
        try:
            return _train_and_log(args, run.info.run_id, settings, threads, started, attempt.resumed)
        except (KeyboardInterrupt, SystemExit):
            mlflow.end_run("KILLED")
            raise


#: Options that change a run's results: a resumed run must be continued with the values it started with.
RESULT_OPTIONS = (
    "epochs", "batch_size", "lr", "momentum", "weight_decay", "label_smoothing", "dropout", "batch_norm", "crop_padding", "flip",
    "eval_every", "seed", "precision", "channels_last", "train_subset", "test_subset", "register_as",
)  # fmt: skip


def _check_same_options(recorded: dict[str, str], args: argparse.Namespace) -> None:
    changed = {
        name: (recorded[name], str(getattr(args, name)))
        for name in RESULT_OPTIONS
        if name in recorded and recorded[name] != str(getattr(args, name))
    }
    if changed:
        listed = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in sorted(changed.items()))
        raise ResumeError(f"the run was started with other settings ({listed}); rerun with the original ones or use a new run key")


def _finished_summary(run_id: str, announce: bool = True) -> Summary:
    run = MlflowClient().get_run(run_id)
    if announce:
        print(f"run {run_id} already finished under this run key; nothing to do", flush=True)
    tags = run.data.tags
    return Summary(run_id, dict(run.data.metrics), tags.get("registered_version"), tags.get("champion") == "true")


def _train_and_log(
    args: argparse.Namespace, run_id: str, settings: TrainSettings, threads: int, started: float, resumed: bool
) -> Summary:
    """Load, train, evaluate, log and register inside the active run `run_id`."""
    client = MlflowClient()
    # What an earlier attempt already recorded is not logged again (params cannot change anyway).
    recorded = client.get_run(run_id).data
    state = None
    if resumed and "runtime" in recorded.metrics:
        # Killed after its last metric (while deleting checkpoints or ending the run): nothing is left to do.
        print(f"run {run_id} had completed its work; marking it finished", flush=True)
        checkpoint.delete_all(run_id)
        return _finished_summary(run_id, announce=False)
    if resumed:
        _check_same_options(recorded.params, args)
        state = checkpoint.load_latest(client, run_id)
        logged = max((m.step for m in client.get_metric_history(run_id, "epoch_time")), default=0)
        if logged > (state["epoch"] if state else 0):
            raise ResumeError(
                f"run {run_id} has logged epochs up to {logged} but its newest readable checkpoint is "
                + (f"epoch {state['epoch']}" if state else "missing (was it started with --no-checkpoint?)")
                + "; it cannot continue without logging epochs twice: use a new run key"
            )
        if state is not None:
            check_resumable(state, settings)
            mlflow.set_tag(checkpoint.RESUMED_FROM_TAG, str(state["epoch"]))
            print(f"continuing after epoch {state['epoch']} of {settings.epochs}", flush=True)
    if not recorded.params:
        mlflow.set_tags(tracking.host_tags(args.cloud, args.training_run))
        options = {key: ("" if value is None else str(value)) for key, value in vars(args).items()}
        mlflow.log_params({**options, "torch_version": torch.__version__, "mlflow_version": mlflow.__version__, "num_threads": threads})

    dataset, data_load_time = timed_load(args.data, args.cache_dir, args.download_url, progress=settings.progress, use_cache=not args.no_cache)
    x_train, y_train = subset(dataset.x_train, dataset.y_train, args.train_subset, args.seed)
    x_test, y_test = subset(dataset.x_test, dataset.y_test, args.test_subset, args.seed)
    if "data_source" not in recorded.params:
        mlflow.log_params(
            {
                "data_source": dataset.source,
                "data_format": dataset.source_format,
                "data_from_cache": dataset.from_cache,
                "train_size": len(x_train),
                "test_size": len(x_test),
            }
        )
    if "data_load_time" not in recorded.metrics:
        mlflow.log_metric("data_load_time", data_load_time)

    seed_everything(args.seed)
    model = prepare_model(AlexNet(dropout=args.dropout, batch_norm=args.batch_norm), settings)
    if "parameter_count" not in recorded.params:
        mlflow.log_param("parameter_count", count_parameters(model))
    log_epoch = tracking.EpochLogger(client, run_id)
    checkpoint_seconds = [0.0]
    # Wall time of the work up to the checkpoint, so that runtime spans every attempt's completed epochs.
    earlier_runtime = state.get("runtime", 0.0) if state else 0.0
    if state:
        # Killed between its checkpoint and its metrics, an epoch is logged here, once.
        logged = {m.step for m in client.get_metric_history(run_id, "epoch_time")}
        for restored in state["results"]:
            if restored["epoch"] not in logged:
                log_epoch(EpochResult(**restored))

    def on_checkpoint(checkpoint_state: dict) -> None:
        checkpoint_state["runtime"] = earlier_runtime + time.perf_counter() - started
        checkpoint_seconds[0] += checkpoint.save(checkpoint_state).seconds

    def on_epoch(result: EpochResult) -> None:
        log_epoch(result)
        print(f"epoch {result.epoch}/{settings.epochs} " + " ".join(f"{k}={v:.4g}" for k, v in result.metrics().items()), flush=True)

    print(f"training on {len(x_train)} images, testing on {len(x_test)}, {threads} threads, {settings.precision}", flush=True)
    epochs = train(
        model, x_train, y_train, x_test, y_test, settings, on_epoch=on_epoch,
        on_checkpoint=None if args.no_checkpoint else on_checkpoint, resume=state,
    )  # fmt: skip

    final = epochs[-1]  # always evaluated: its test metrics are the run's
    if final.predictions is None:  # the last epoch came from the checkpoint: its predictions were not saved
        final = replace(final, predictions=evaluate(model, torch.from_numpy(x_test), torch.from_numpy(y_test), settings.eval_batch_size)[2])
    training_time = sum(e.epoch_time for e in epochs)
    metrics = {
        "data_load_time": recorded.metrics.get("data_load_time", data_load_time),  # the first attempt's, as logged
        "training_time": training_time,
        "test_loss": final.test_loss,
        "test_accuracy": final.test_accuracy,
        "eval_time": sum(e.eval_time or 0.0 for e in epochs),
        "train_images_per_second": len(x_train) * len(epochs) / training_time,
        "tracking_time": log_epoch.seconds,
        "checkpoint_time": checkpoint_seconds[0],
    }
    # test_loss and test_accuracy are already logged per epoch; their latest
    # value (the last epoch's) is the run-level figure MLflow shows.
    mlflow.log_metrics({k: v for k, v in metrics.items() if k not in ("test_loss", "test_accuracy", "data_load_time")})
    info = tracking.log_model(model, x_test[: min(8, len(x_test))], final.predictions.numpy())
    tracking.log_samples(x_test, y_test)
    version, promoted = (None, False)
    if not args.no_register:
        # An attempt killed after registering left a version of this run: it is reused, not doubled.
        version, promoted = tracking.register(info.model_uri, args.register_as, run_id, final.test_accuracy)
        mlflow.set_tags({"registered_model": args.register_as, "registered_version": version, "champion": str(promoted).lower()})
    metrics["runtime"] = earlier_runtime + time.perf_counter() - started
    # runtime is the run's last metric: a resumed run that has it is complete (see _train_and_log's start).
    mlflow.log_metric("runtime", metrics["runtime"])
    if not args.no_checkpoint and not args.keep_checkpoints:
        checkpoint.delete_all(run_id)
    return Summary(run_id, metrics, version, promoted)
