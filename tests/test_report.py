"""The cloud comparison report against a real tracking server holding real short trainer runs."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from devstack.paths import REPO_ROOT
from devstack.procs import free_port
from report.collect import METRICS, REFERENCE_TEXT
from report.render import FIGURES, FIGURE_SIZE, DPI
from tests.test_cli import run_trainer

pytestmark = pytest.mark.slow

EXPERIMENT = "report-test"
SHORT = ["--train-subset", "300", "--test-subset", "200", "--epochs", "2", "--batch-size", "100", "--no-progress", "--no-register"]


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "report", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def populated(tracking_server, training_tree, tmp_path_factory):
    """Two real runs per cloud, one deliberately failed run, and an ibm run lacking most metrics."""
    cache = str(tmp_path_factory.mktemp("cache"))
    env = {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "GIT_COMMIT": ""}
    for cloud in ("aws", "gcp", "ibm"):
        for seed in (1, 2):
            result = run_trainer("--data", str(training_tree), "--cache-dir", cache, "--cloud", cloud, "--seed", str(seed), *SHORT, env=env)
            assert result.returncode == 0, result.stderr[-2000:]
    failed = run_trainer("--data", str(tmp_path_factory.mktemp("empty")), "--cloud", "aws", *SHORT, env=env)
    assert failed.returncode == 2
    client = MlflowClient(tracking_server.url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    # A finished run that lacks metrics, as an interrupted older trainer version would leave.
    partial = client.create_run(experiment.experiment_id, tags={"cloud": "ibm"})
    client.log_metric(partial.info.run_id, "data_load_time", 0.5)
    client.set_terminated(partial.info.run_id)
    return client, experiment


@pytest.fixture(scope="module")
def report(populated, tracking_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    result = run_report("--tracking-uri", tracking_server.url, "--experiment", EXPERIMENT, "--output", str(out), "--log-to-mlflow")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def expected(client: MlflowClient, experiment) -> dict[str, dict[str, list[float]]]:
    values: dict[str, dict[str, list[float]]] = {}
    for run in client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'"):
        per = values.setdefault(run.data.tags["cloud"], {m: [] for m in METRICS})
        for metric in METRICS:
            if metric in run.data.metrics:
                per[metric].append(run.data.metrics[metric])
    return values


def test_numbers_equal_what_mlflow_holds(populated, report):
    client, experiment = populated
    document = json.loads((report[0] / "comparison.json").read_text())
    truth = expected(client, experiment)
    assert set(document["measured"]) == {"aws", "gcp", "ibm"}
    for cloud, per in truth.items():
        for metric, values in per.items():
            got = document["measured"][cloud][metric]
            if not values:
                assert got["n"] == 0 and got["mean"] is None
                continue
            assert got["n"] == len(values)
            assert got["mean"] == pytest.approx(statistics.mean(values))
            assert got["std"] == pytest.approx(statistics.stdev(values) if len(values) > 1 else 0.0)
            assert (got["min"], got["max"]) == (min(values), max(values))
    assert document["measured"]["aws"]["runtime"]["n"] == 2
    assert document["measured"]["ibm"]["data_load_time"]["n"] == 3  # the partial run has this one


def test_markdown_csv_and_json_agree(report):
    out, stdout = report
    document = json.loads((out / "comparison.json").read_text())
    markdown = (out / "comparison.md").read_text()
    with open(out / "comparison.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"] == "measured"]
    assert len(rows) == 3 * len(METRICS)
    for row in rows:
        got = document["measured"][row["cloud"]][row["metric"]]
        assert int(row["n"]) == got["n"]
        if got["n"]:
            assert float(row["mean"]) == pytest.approx(got["mean"]) and float(row["std"]) == pytest.approx(got["std"])
            digits = 4 if row["metric"] in ("test_loss", "test_accuracy") else 2
            assert f"{got['mean']:.{digits}f} ± {got['std']:.{digits}f} (n={got['n']})" in markdown
    assert "| Metric | aws | gcp | ibm |" in markdown
    assert "| Metric | aws | gcp | ibm |" in stdout


def test_missing_metric_is_reported_and_the_rest_computed(report):
    markdown = (report[0] / "comparison.md").read_text()
    ibm_runtime = json.loads((report[0] / "comparison.json").read_text())["measured"]["ibm"]["runtime"]
    assert ibm_runtime["n"] == 2 and ibm_runtime["missing"] == 1
    assert "(n=2), 1 missing" in markdown


def test_failed_run_is_skipped_and_counted(report):
    document = json.loads((report[0] / "comparison.json").read_text())
    assert document["skipped"] == {"FAILED": 1} and document["runs"] == 7
    assert "skipped: 1 FAILED" in (report[0] / "comparison.md").read_text()


def test_each_figure_exists_opens_has_its_size_and_is_not_blank(report):
    for name in FIGURES:
        with Image.open(report[0] / name) as image:
            assert image.size == (FIGURE_SIZE[0] * DPI, FIGURE_SIZE[1] * DPI)
            pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 5 and (pixels < 128).mean() > 0.005, f"{name} looks blank"


def test_html_is_self_contained_and_holds_every_figure(report):
    page = (report[0] / "report.html").read_text()
    for name in FIGURES:
        assert f'alt="{name}"' in page
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert "<table>" in page and "src=\"http" not in page


def test_reference_set_is_rendered_unchanged(report):
    markdown = (report[0] / "comparison.md").read_text()
    section = markdown[markdown.index("## The 2022 study"):]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert header[1:] == list(REFERENCE_TEXT)
    as_printed = {cloud: [row[1 + i] for row in body] for i, cloud in enumerate(header[1:])}
    # The study's Table 6.1, as published: data load, run time, test loss, training time.
    assert as_printed == {"IBM Cloud": ["5.079", "1412.4", "109.7", "502.6"], "GCP": ["7.157", "4181", "119", "1494.8"],
                          "AWS": ["5.90", "1592", "115.1", "577.84"]}  # fmt: skip
    assert "not state" in section


def test_report_is_logged_to_mlflow(populated, report):
    client, _ = populated
    comparison = client.get_experiment_by_name("cloud-comparison")
    run = client.search_runs([comparison.experiment_id])[0]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"comparison.md", "comparison.csv", "comparison.json", "report.html", *FIGURES} <= names


def test_unreachable_server_is_a_clear_error(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "report", "--tracking-uri", f"http://127.0.0.1:{free_port()}", "--output", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"},
    )  # fmt: skip
    assert result.returncode == 3 and "unreachable" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 120


def test_empty_or_unknown_experiment_is_a_clear_error(tracking_server, tmp_path):
    MlflowClient(tracking_server.url).create_experiment("report-empty")
    for name, phrase in (("report-empty", "has no runs"), ("no-such-experiment", "no experiment named")):
        result = run_report("--tracking-uri", tracking_server.url, "--experiment", name, "--output", str(tmp_path / name))
        assert result.returncode == 4 and phrase in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / name).exists()


def test_stack_source_without_the_pulumi_cli_says_to_pass_uris(tmp_path, monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "report", "--stack", "aws", "--output", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2 and "--tracking-uri" in result.stderr and "Pulumi CLI" in result.stderr


def test_filters_select_runs(populated, tracking_server, tmp_path):
    result = run_report("--tracking-uri", tracking_server.url, "--experiment", EXPERIMENT, "--since", "2999-01-01", "--output", str(tmp_path / "o"))
    assert result.returncode == 4 and "no runs" in result.stderr
    result = run_report("--tracking-uri", tracking_server.url, "--experiment", EXPERIMENT, "--status", "FAILED", "--output", str(tmp_path / "f"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "f" / "comparison.json").read_text())["runs"] == 1


def test_benchmark_local_trains_then_reports(training_tree, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "devstack.benchmark_local", "--runs", "2", "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "out"),
         "--", "--data", str(training_tree), "--cache-dir", str(tmp_path / "cache"), *SHORT],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert list(document["measured"]) == ["local"] and document["measured"]["local"]["runtime"]["n"] == 2
    assert "| Metric | local |" in result.stdout
