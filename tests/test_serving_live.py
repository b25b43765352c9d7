"""The inference service as production runs it: gunicorn serving a model that the real trainer
registered in a real tracking server on PostgreSQL, and a real browser on its page."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient

from devstack.paths import REPO_ROOT
from devstack.procs import wait_until
from devstack.serving import start_serving
from tests.test_cli import run_trainer
from trainer import tracking

pytestmark = pytest.mark.slow

MODEL = "alexnet-serving"
#: Screenshots of the browser test land here (kept after the run; ignored by git).
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def registered(tracking_server, training_tree, tmp_path_factory):
    """A short real training run registered as version 1 (champion) of MODEL."""
    env = {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_EXPERIMENT_NAME": "serving", "GIT_COMMIT": ""}
    result = run_trainer(
        "--data", str(training_tree), "--cache-dir", str(tmp_path_factory.mktemp("cache")), "--epochs", "1",
        "--train-subset", "1000", "--batch-size", "100", "--no-progress", "--register-as", MODEL, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_server.url)
    version = client.get_model_version_by_alias(MODEL, "champion")
    return client, version


@pytest.fixture(scope="module")
def gunicorn(tracking_server, registered, tmp_path_factory):
    """gunicorn with the production config: 2 workers, 1 torch thread each."""
    settings = {"MLFLOW_TRACKING_URI": tracking_server.url, "MODEL_NAME": MODEL, "MODEL_POLL_SECONDS": "1",
                "SERVING_WORKERS": "2", "MAX_UPLOAD_BYTES": str(1 << 20)}  # fmt: skip
    served = start_serving(settings, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield served.url
    served.stop()


def test_gunicorn_serves_what_training_predicted(gunicorn, registered, tmp_path):
    client, version = registered
    logged = json.loads(Path(client.download_artifacts(version.run_id, tracking.PREDICTIONS_ARTIFACT, str(tmp_path))).read_text())
    samples = np.load(client.download_artifacts(version.run_id, tracking.SAMPLES_ARTIFACT, str(tmp_path)))
    answer = requests.post(f"{gunicorn}/predict", json={"indices": list(range(32))}, timeout=60).json()
    served = [p["class_index"] for p in answer["predictions"]]
    assert answer["model_version"] == version.version
    # Training evaluated in fp32 on the same arrays: the served classes agree (ties may flip in float).
    trained = np.array(logged["predictions"])[samples["indices"][:32]]
    assert np.mean(np.array(served) == trained) >= 0.95
    assert [p["true_label"] for p in answer["predictions"]] == [tracking.CLASSES[i] for i in samples["labels"][:32]]


def test_oversized_body_gets_413_not_a_reset_connection(gunicorn):
    response = requests.post(f"{gunicorn}/predict", data=b"\0" * (5 << 20), headers={"Content-Type": "image/png"}, timeout=60)
    assert response.status_code == 413 and "MAX_UPLOAD_BYTES" in response.json()["error"]
    assert requests.get(f"{gunicorn}/healthz", timeout=5).ok


def test_chunked_body_over_the_limit_gets_413_too(gunicorn):
    def chunks():
        for _ in range(40):
            yield b"\0" * (64 << 10)  # 2.5 MiB in all, no Content-Length

    response = requests.post(f"{gunicorn}/predict", data=chunks(), headers={"Content-Type": "image/png"}, timeout=60)
    assert response.status_code == 413 and "MAX_UPLOAD_BYTES" in response.json()["error"]


def test_metrics_add_up_both_workers(gunicorn):
    for _ in range(20):
        requests.get(f"{gunicorn}/healthz", timeout=5)
    text = requests.get(f"{gunicorn}/metrics", timeout=5).text
    line = next(li for li in text.splitlines() if li.startswith('serving_requests_total{endpoint="/healthz"'))
    assert float(line.split()[-1]) >= 20
    assert "serving_model_version" in text


def test_alias_move_swaps_the_model_without_dropping_requests(gunicorn, registered, tracking_server):
    import mlflow

    client, version = registered
    statuses: list[int] = []
    stop = threading.Event()

    def hammer():
        with requests.Session() as session:
            while not stop.is_set():
                statuses.append(session.post(f"{gunicorn}/predict", json={"index": 1}, timeout=30).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        mlflow.set_tracking_uri(tracking_server.url)
        new = mlflow.register_model(version.source, MODEL)
        client.set_registered_model_alias(MODEL, "champion", new.version)
        seen: set[str] = set()

        def both_workers_moved() -> bool:
            seen.update(requests.post(f"{gunicorn}/predict", json={"index": 1}, timeout=30).json()["model_version"] for _ in range(6))
            return requests.get(f"{gunicorn}/readyz", timeout=5).json()["model_version"] == new.version and all(
                requests.post(f"{gunicorn}/predict", json={"index": 1}, timeout=30).json()["model_version"] == new.version for _ in range(6)
            )

        wait_until(both_workers_moved, 120, what="model swap")
    finally:
        stop.set()
        worker.join(60)
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"


def test_browser_picks_an_index_and_sees_a_prediction(gunicorn, registered, tmp_path):
    if not (shutil.which("chromedriver") and os.path.exists("/usr/bin/chromium")):
        message = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        if os.environ.get("MLMC_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(gunicorn + "/")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".sample")) == tracking.SAMPLE_COUNT
        field = driver.find_element(By.ID, "index")
        field.clear()
        field.send_keys("5")
        driver.find_element(By.ID, "predict-index").click()
        label = WebDriverWait(driver, 30).until(expected_conditions.visibility_of_element_located((By.ID, "predicted-label")))
        assert label.text in tracking.CLASSES
        truth = driver.find_element(By.ID, "true-label").text
        expected = requests.post(f"{gunicorn}/predict", json={"index": 5}, timeout=30).json()
        assert (label.text, truth) == (expected["label"], expected["true_label"])
        assert "Model version" in driver.find_element(By.ID, "result").text
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "serving-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
