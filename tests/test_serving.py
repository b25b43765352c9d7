"""The inference service through Flask's test client: every route, every input form, every bad input."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_cifar import preprocess
from alexnet_cifar.model import AlexNet
from alexnet_cifar.preprocess import CLASSES
from serving import app as serving_app
from serving.app import create_app
from serving.model import LoadedModel, ModelHolder


class TorchPredictor:
    """A real (untrained, seeded) AlexNet behind the pyfunc ``predict`` interface."""

    def __init__(self):
        torch.manual_seed(0)
        self.model = AlexNet().eval()

    def predict(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.array(images))).numpy()


@pytest.fixture(scope="module")
def loaded(real_sample) -> LoadedModel:
    images, labels = real_sample.arrays("test", 2)
    return LoadedModel(TorchPredictor(), "7", "models:/alexnet-cifar10/7", images, labels)


@pytest.fixture
def app(loaded):
    return create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded), "MAX_UPLOAD_BYTES": 2 << 20, "MAX_BATCH": 8})


@pytest.fixture
def client(app):
    return app.test_client()


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def jpeg(real_sample) -> bytes:
    """A real CIFAR-10 test image as the JPEG bytes of the archive."""
    return real_sample.files[("test", "cat")][0][1]


def assert_prediction(answer: dict, version: str = "7") -> None:
    assert answer["label"] in CLASSES and answer["label"] == CLASSES[answer["class_index"]]
    probabilities = answer["probabilities"]
    assert set(probabilities) == set(CLASSES) and sum(probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert answer["top3"][0]["label"] == answer["label"] == max(probabilities, key=probabilities.get)
    assert [t["probability"] for t in answer["top3"]] == sorted((t["probability"] for t in answer["top3"]), reverse=True)
    assert answer["model_version"] == version


def test_factory_defaults_come_from_the_settings_table(loaded, monkeypatch):
    for name in serving_app.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    app = create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded)})
    assert app.config["MAX_CONTENT_LENGTH"] == int(serving_app.SETTINGS["MAX_UPLOAD_BYTES"][0]) == 10 << 20
    assert app.config["MAX_BATCH"] == 64 and not app.testing
    monkeypatch.setenv("MAX_BATCH", "3")
    assert create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded)}).config["MAX_BATCH"] == 3


def test_bad_setting_is_named(loaded, monkeypatch):
    monkeypatch.setenv("MAX_BATCH", "many")
    with pytest.raises(ValueError, match="MAX_BATCH"):
        create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded)})


def test_page_shows_the_sample_grid_index_field_upload_form_and_version(client, loaded):
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="sample"') == len(loaded.sample_labels) == 20
    assert "#0 " + CLASSES[int(loaded.sample_labels[0])] in page
    assert 'id="index"' in page and 'type="file"' in page and 'id="model-version">7<' in page


def test_multipart_file(client, jpeg, loaded):
    response = client.post("/predict", data={"file": (io.BytesIO(jpeg), "cat.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 200, response.json
    assert_prediction(response.json)
    assert response.json["filename"] == "cat.jpg"


def test_prediction_equals_the_model_on_the_shared_preprocessing(client, jpeg, loaded):
    expected = loaded.probabilities(preprocess.to_model_input(Image.open(io.BytesIO(jpeg)))[None])[0]
    answer = client.post("/predict", data=jpeg, content_type="image/jpeg").json
    assert answer["class_index"] == int(expected.argmax())
    assert answer["probabilities"][CLASSES[0]] == pytest.approx(expected[0], abs=1e-5)
    assert serving_app.to_model_input is preprocess.to_model_input


def test_raw_bytes(client, jpeg):
    for content_type in ("image/jpeg", "application/octet-stream"):
        response = client.post("/predict", data=jpeg, content_type=content_type)
        assert response.status_code == 200
        assert_prediction(response.json)


def test_json_index_reports_the_true_label(client, loaded):
    response = client.post("/predict", json={"index": 3})
    assert response.status_code == 200
    assert_prediction(response.json)
    assert response.json["index"] == 3 and response.json["true_label"] == CLASSES[int(loaded.sample_labels[3])]


def test_json_base64_and_data_url(client, jpeg):
    encoded = base64.b64encode(jpeg).decode()
    for value in (encoded, "data:image/jpeg;base64," + encoded):
        response = client.post("/predict", json={"image_base64": value})
        assert response.status_code == 200
        assert_prediction(response.json)


def test_batches_in_every_form(client, jpeg):
    files = {"file": [(io.BytesIO(jpeg), "a.jpg"), (io.BytesIO(jpeg), "b.jpg"), (io.BytesIO(jpeg), "c.jpg")]}
    forms = [
        client.post("/predict", data=files, content_type="multipart/form-data"),
        client.post("/predict", json={"indices": [0, 1, 2]}),
        client.post("/predict", json={"images_base64": [base64.b64encode(jpeg).decode()] * 3}),
    ]
    for response in forms:
        assert response.status_code == 200, response.json
        predictions = response.json["predictions"]
        assert len(predictions) == 3 and response.json["model_version"] == "7"
        for answer in predictions:
            assert_prediction(answer)
    same = [p["class_index"] for p in forms[0].json["predictions"]]
    assert len(set(same)) == 1  # the same image thrice gives the same answer


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (40, 30), (10, 200, 30, 128)),
        Image.new("L", (32, 32), 128),
        Image.new("P", (50, 50), 3),
        Image.fromarray(np.full((20, 20), 60000, dtype=np.uint16)),
        Image.new("RGB", (1, 1), (255, 0, 0)),
        Image.new("RGB", (4000, 3000), (0, 0, 255)),
        Image.new("1", (64, 64), 1),
        Image.new("CMYK", (32, 32), (0, 0, 0, 0)),
    ],
    ids=["rgba", "grayscale", "palette", "16-bit", "1x1", "4000x3000", "bilevel", "cmyk"],
)
def test_any_mode_and_size_is_converted(client, image):
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    response = client.post("/predict", data={"file": (io.BytesIO(encode(image, fmt)), "x.img")}, content_type="multipart/form-data")
    assert response.status_code == 200, response.json
    assert_prediction(response.json)


def _truncated(jpeg: bytes) -> bytes:
    return encode(Image.new("RGB", (64, 64), (1, 2, 3)))[:60]


@pytest.mark.parametrize(
    "kwargs, status, phrase",
    [
        (dict(data={"note": "hi"}, content_type="multipart/form-data"), 400, "no file"),
        (dict(data={"file": (io.BytesIO(b""), "empty.png")}, content_type="multipart/form-data"), 400, "empty"),
        (dict(data=b"", content_type="image/png"), 400, "empty"),
        (dict(data={"file": (io.BytesIO(b"just some text\n"), "notes.png")}, content_type="multipart/form-data"), 400, "not an image"),
        (dict(data=_truncated(b""), content_type="image/png"), 400, "truncated"),
        (dict(data=b'{"index": 3', content_type="application/json"), 400, "malformed JSON"),
        (dict(data=b"[1, 2]", content_type="application/json"), 400, "malformed JSON"),
        (dict(json={"index": -1}), 400, "out of range"),
        (dict(json={"index": 10**6}), 400, "out of range"),
        (dict(json={"index": "abc"}), 400, "must be an integer"),
        (dict(json={"index": 2.5}), 400, "must be an integer"),
        (dict(json={"index": True}), 400, "must be an integer"),
        (dict(json={"image_base64": "!!!not base64"}), 400, "not valid base64"),
        (dict(json={"image_base64": 5}), 400, "base64 string"),
        (dict(json={"indices": []}), 400, "non-empty list"),
        (dict(json={"indices": list(range(9))}), 413, "MAX_BATCH"),
        (dict(json={"something": 1}), 400, "needs one of"),
        (dict(data=b"hello", content_type="text/plain"), 415, "unsupported content type"),
        (dict(data=b"x" * (3 << 20), content_type="image/png"), 413, "MAX_UPLOAD_BYTES"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_gets_a_json_4xx_saying_what_is_wrong(client, kwargs, status, phrase):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert phrase in response.json["error"]
    assert client.get("/healthz").status_code == 200  # still up


def test_decompression_bomb_is_refused(loaded):
    app = create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded), "MAX_IMAGE_PIXELS": 1000})
    response = app.test_client().post("/predict", data=encode(Image.new("RGB", (100, 100))), content_type="image/png")
    assert response.status_code == 413 and "pixels" in response.json["error"]


def test_wrong_method_and_unknown_route_are_json_errors(client):
    assert client.get("/predict").status_code == 405 and "error" in client.get("/predict").json
    assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").json


def test_health_and_readiness(client, loaded):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["model_version"] == "7"


def test_not_ready_without_a_model():
    holder = ModelHolder.fixed(None)
    holder.last_error = "ConnectionError: refused"
    client = create_app({"MODEL_HOLDER": holder}).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503 and "refused" in client.get("/readyz").json["error"]
    assert client.post("/predict", json={"index": 0}).status_code == 503


def test_metrics_count_requests_latency_and_version(client):
    client.post("/predict", json={"index": 0})
    client.post("/predict", json={"index": -5})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'serving_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert 'serving_requests_total{endpoint="/predict",method="POST",status="400"}' in text
    assert "serving_request_seconds_bucket" in text and "serving_model_version 7.0" in text


def test_swapping_the_model_changes_the_answer_version_without_a_restart(client, loaded, app):
    holder = app.extensions["model_holder"]
    before = client.post("/predict", json={"index": 0}).json["model_version"]
    holder.current = LoadedModel(loaded.predictor, "8", "models:/alexnet-cifar10/8", loaded.sample_images, loaded.sample_labels)
    after = client.post("/predict", json={"index": 0}).json["model_version"]
    assert (before, after) == ("7", "8")


def test_refresh_keeps_the_model_when_the_registry_is_unreachable(loaded):
    def broken_client():
        raise ConnectionError("tracking server down")

    holder = ModelHolder.fixed(loaded)
    holder._client_factory = broken_client
    assert holder.refresh() is False and holder.current is loaded and "down" in holder.last_error


def test_json_errors_are_valid_json_with_content_type(client):
    response = client.post("/predict", data=b"{", content_type="application/json")
    assert response.mimetype == "application/json" and json.loads(response.get_data())["error"]


def test_first_load_retries_until_the_registry_answers(loaded, monkeypatch):
    from serving import model as serving_model
    from serving.model import RegistrySettings

    attempts = []

    def flaky_client():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("connection refused")
        return object()

    monkeypatch.setattr(serving_model, "resolve_version", lambda client, settings: ("4", "run-4"))
    monkeypatch.setattr(serving_model, "load_version", lambda client, settings, version, run_id: loaded)
    monkeypatch.setattr(serving_model.time, "sleep", lambda seconds: None)
    holder = ModelHolder(RegistrySettings(name="m", load_timeout=60), client_factory=flaky_client)
    assert holder.load() is loaded and len(attempts) == 3 and holder.last_error is None


def test_first_load_gives_up_after_the_timeout_with_a_clear_message():
    from serving.model import ModelLoadError, RegistrySettings

    def down():
        raise ConnectionError("connection refused")

    holder = ModelHolder(RegistrySettings(name="m", load_timeout=1.5), client_factory=down)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"models:/m@champion.*MODEL_LOAD_TIMEOUT.*connection refused"):
        holder.load()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "body, phrase",
    [
        ({"image_base64": "data:image/png;base64"}, "data URL without data"),
        ({"images_base64": ["DATA:x"]}, "data URL without data"),
    ],
)
def test_broken_data_urls_are_400(client, body, phrase):
    response = client.post("/predict", json=body)
    assert response.status_code == 400 and phrase in response.json["error"]


def test_base64_with_line_breaks_and_uppercase_data_prefix_works(client, jpeg):
    encoded = base64.b64encode(jpeg).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + "\n"  # as base64(1) prints it
    for value in (wrapped, " " + encoded + "\n", "DATA:image/jpeg;base64," + encoded):
        response = client.post("/predict", json={"image_base64": value})
        assert response.status_code == 200, response.json
        assert_prediction(response.json)


def test_deeply_nested_json_is_400_not_500(client):
    response = client.post("/predict", data=b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}", content_type="application/json")
    assert response.status_code == 400 and "malformed JSON" in response.json["error"]


def test_image_header_claiming_a_huge_size_is_413(client):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10000, 10000, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    response = client.post("/predict", data=png, content_type="image/png")
    assert response.status_code == 413 and "MAX_IMAGE_PIXELS" in response.json["error"]


def test_exif_orientation_is_applied(client):
    from PIL import ImageOps

    picture = Image.new("RGB", (48, 32), (0, 0, 0))
    picture.paste((255, 255, 255), (0, 0, 24, 32))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    tagged = io.BytesIO()
    picture.save(tagged, "JPEG", exif=exif, quality=95)
    expected = preprocess.to_model_input(ImageOps.exif_transpose(Image.open(io.BytesIO(tagged.getvalue()))))
    assert np.array_equal(preprocess.to_model_input(Image.open(io.BytesIO(tagged.getvalue()))), expected)
    assert expected[:16].mean() > 200 and expected[16:].mean() < 60  # white on top after rotating


def test_405_says_which_methods_work_and_metric_labels_stay_bounded(client):
    response = client.put("/predict")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    client.open("/predict", method="XMETHOD1")
    text = client.get("/metrics").get_data(as_text=True)
    assert "XMETHOD1" not in text and 'method="OTHER"' in text


def test_non_finite_model_output_is_an_error_not_invalid_json(real_sample):
    class NaNPredictor:
        def predict(self, images):
            return np.full((len(images), 10), np.nan)

    images, labels = real_sample.arrays("test", 1)
    holder = ModelHolder.fixed(LoadedModel(NaNPredictor(), "9", "u", images, labels))
    response = create_app({"MODEL_HOLDER": holder}).test_client().post("/predict", json={"index": 0})
    assert response.status_code == 500 and "non-finite" in json.loads(response.get_data())["error"]


def test_too_many_form_parts_says_so(client):
    fields = {f"f{i}": "x" for i in range(1100)}
    response = client.post("/predict", data=fields, content_type="multipart/form-data")
    assert response.status_code == 413 and "form parts" in response.json["error"]


def test_batch_limit_is_checked_before_decoding(client):
    files = {"file": [(io.BytesIO(b"junk"), f"{i}.png") for i in range(9)]}
    response = client.post("/predict", data=files, content_type="multipart/form-data")
    assert response.status_code == 413 and "MAX_BATCH" in response.json["error"]
