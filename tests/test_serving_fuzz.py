"""``POST /predict`` fuzzed with hypothesis: random bytes, random JSON, random multipart. Never a 5xx.

The app is the real one (a real AlexNet, real sample images) behind Flask's test
client. ``FUZZ_EXAMPLES`` sets the examples per strategy (CI: 150; ``make load``: 2000).
"""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from serving.model import LoadedModel, ModelHolder
from tests.test_serving import TorchPredictor

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)
CONTENT_TYPES = st.sampled_from(
    ["image/png", "image/jpeg", "image/gif", "application/octet-stream", "application/json", "text/plain", "", "image/", "application/x-www-form-urlencoded"]
)
KEYS = st.sampled_from(["index", "indices", "image_base64", "images_base64", "pixels", ""])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=50)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)


@pytest.fixture(scope="module")
def client(real_sample):
    images, labels = real_sample.arrays("test", 2)
    loaded = LoadedModel(TorchPredictor(), "7", "models:/alexnet-cifar10/7", images, labels)
    app = create_app({"MODEL_HOLDER": ModelHolder.fixed(loaded), "MAX_UPLOAD_BYTES": 1 << 20, "MAX_BATCH": 8})
    return app.test_client()


def _check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert "error" in response.get_json(), "an error answer names the problem"


@FUZZ
@given(body=st.binary(max_size=4096), content_type=CONTENT_TYPES)
def test_random_bytes_never_cause_a_5xx(client, body, content_type):
    _check(client.post("/predict", data=body, headers={"Content-Type": content_type}))


@FUZZ
@given(document=JSON_VALUES)
def test_random_json_never_causes_a_5xx(client, document):
    _check(client.post("/predict", data=json.dumps(document, allow_nan=True), content_type="application/json"))


@FUZZ
@given(key=KEYS, value=JSON_VALUES | st.binary(max_size=512).map(lambda b: base64.b64encode(b).decode()))
def test_json_with_the_real_keys_and_random_values_never_causes_a_5xx(client, key, value):
    _check(client.post("/predict", data=json.dumps({key: value}, allow_nan=True), content_type="application/json"))


@FUZZ
@given(files=st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=2048)), max_size=10))
def test_random_multipart_uploads_never_cause_a_5xx(client, files):
    data = {name or "image": (io.BytesIO(content), "x.png") for name, content in files}
    _check(client.post("/predict", data=data, content_type="multipart/form-data"))


@st.composite
def images(draw):
    """Real encoded images of random size, mode and format: decodable, but rarely 32x32 RGB."""
    from PIL import Image

    mode = draw(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I", "F", "CMYK"]))
    size = (draw(st.integers(1, 80)), draw(st.integers(1, 80)))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]))
    image = Image.new(mode, size, color=draw(st.integers(0, 255)))
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt)
    except (OSError, ValueError, KeyError):  # this format cannot hold this mode
        image.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


@FUZZ
@given(body=images(), as_json=st.booleans())
def test_odd_but_valid_images_never_cause_a_5xx(client, body, as_json):
    if as_json:
        response = client.post("/predict", json={"image_base64": base64.b64encode(body).decode()})
    else:
        response = client.post("/predict", data=body, headers={"Content-Type": "image/png"})
    _check(response)
    if response.status_code == 200:
        assert response.get_json()["label"]
