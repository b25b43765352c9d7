"""Collect finished training runs from one or more tracking servers and summarise them per cloud."""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: The study's four metrics first, then ours. Names are the trainer's MLflow contract.
METRICS = ("data_load_time", "runtime", "test_loss", "training_time", "test_accuracy", "train_images_per_second")
LABELS = {
    "data_load_time": "Data load time (s)",
    "runtime": "Run time (s)",
    "test_loss": "Test loss",
    "training_time": "Training time (s)",
    "test_accuracy": "Test accuracy",
    "train_images_per_second": "Training images/s",
}
#: The 2022 study's Table 6.1 as published (one run per cloud, copied by hand from the MLflow UI),
#: kept as text so that it is rendered exactly as printed.
REFERENCE_TEXT = {
    "IBM Cloud": {"data_load_time": "5.079", "runtime": "1412.4", "test_loss": "109.7", "training_time": "502.6"},
    "GCP": {"data_load_time": "7.157", "runtime": "4181", "test_loss": "119", "training_time": "1494.8"},
    "AWS": {"data_load_time": "5.90", "runtime": "1592", "test_loss": "115.1", "training_time": "577.84"},
}
REFERENCE = {cloud: {metric: float(text) for metric, text in values.items()} for cloud, values in REFERENCE_TEXT.items()}
REFERENCE_NOTE = (
    "Published figures of the 2022 study (one run per cloud, read from the MLflow UI by hand). "
    "The study does not state how its test loss was computed (its values near 110-120 suggest a sum "
    "over batches), so it cannot be compared with our test_loss, the mean cross-entropy per test image."
)


class ReportError(Exception):
    """A situation the report cannot handle; ``exit_code`` says which."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunRecord:
    """One finished run: its cloud, run-level metrics and per-epoch test loss."""

    source: str
    run_id: str
    cloud: str
    metrics: dict[str, float]
    test_loss_per_epoch: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Collected:
    """What a collection found."""

    runs: list[RunRecord]
    skipped: dict[str, int]  # status -> count of runs left out (FAILED, KILLED, RUNNING)


@dataclass(frozen=True)
class Summary:
    """n, mean, standard deviation (n-1), min and max of one metric of one cloud; n may be 0."""

    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    missing: int


def stack_tracking_uri(stack: str) -> str:
    """The ``mlflowUrl`` output of a Pulumi stack, through the Pulumi CLI."""
    if shutil.which("pulumi") is None:
        raise ReportError(f"stack {stack!r}: the Pulumi CLI is not installed; pass the tracking URI with --tracking-uri instead", 2)
    result = subprocess.run(["pulumi", "stack", "output", "mlflowUrl", "-s", stack], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise ReportError(f"stack {stack!r}: pulumi stack output mlflowUrl failed: {result.stderr.strip() or 'empty output'}", 2)
    return result.stdout.strip()


def _filter(training_run: str | None, since: datetime | None, until: datetime | None) -> str:
    clauses = []
    if training_run:
        clauses.append(f"tags.trainingRun = '{training_run}'")
    if since:
        clauses.append(f"attributes.start_time >= {int(since.timestamp() * 1000)}")
    if until:
        clauses.append(f"attributes.start_time <= {int(until.timestamp() * 1000)}")
    return " and ".join(clauses)


def collect(
    tracking_uris: list[str],
    experiment: str,
    statuses: tuple[str, ...] = ("FINISHED",),
    training_run: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Collected:
    """Every run of ``experiment`` on every server, those with a status in ``statuses`` kept."""
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    runs: list[RunRecord] = []
    skipped: dict[str, int] = {}
    found_experiment = False
    for uri in tracking_uris:
        client = MlflowClient(uri)
        try:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                continue
            found_experiment = True
            page_token = None
            while True:
                page = client.search_runs([found.experiment_id], _filter(training_run, since, until), max_results=500, page_token=page_token)
                for run in page:
                    status = run.info.status
                    if status not in statuses:
                        skipped[status] = skipped.get(status, 0) + 1
                        continue
                    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "test_loss"))
                    runs.append(
                        RunRecord(uri, run.info.run_id, run.data.tags.get("cloud", "unknown"),
                                  {k: v for k, v in run.data.metrics.items() if k in METRICS}, history)
                    )  # fmt: skip
                page_token = page.token
                if not page_token:
                    break
        except (MlflowException, requests.exceptions.RequestException, OSError) as error:
            raise ReportError(f"tracking server {uri} is unreachable or failed: {str(error).splitlines()[0][:300]}", 3) from None
    if not found_experiment:
        raise ReportError(f"no experiment named {experiment!r} on {', '.join(tracking_uris)}", 4)
    if not runs:
        skipped_text = f" ({', '.join(f'{n} {s}' for s, n in sorted(skipped.items()))} skipped)" if skipped else ""
        raise ReportError(f"experiment {experiment!r} has no runs with status {'/'.join(statuses)} matching the filters{skipped_text}", 4)
    return Collected(runs, skipped)


def summarise(runs: list[RunRecord]) -> dict[str, dict[str, Summary]]:
    """Per cloud (sorted), per metric: the summary over the runs that have it."""
    result: dict[str, dict[str, Summary]] = {}
    for cloud in sorted({r.cloud for r in runs}):
        of_cloud = [r for r in runs if r.cloud == cloud]
        result[cloud] = {}
        for metric in METRICS:
            values = [r.metrics[metric] for r in of_cloud if metric in r.metrics and math.isfinite(r.metrics[metric])]
            missing = len(of_cloud) - len(values)
            if not values:
                result[cloud][metric] = Summary(0, None, None, None, None, missing)
                continue
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
            result[cloud][metric] = Summary(len(values), mean, std, min(values), max(values), missing)
    return result


def parse_date(text: str) -> datetime:
    """An ISO date or date-time, UTC when no zone is given (for --since/--until)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
