"""The inference service: a Flask application factory, run by gunicorn in production.

    gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'

Routes: ``GET /`` (the page), ``POST /predict``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics``. Settings come from the environment (see ``SETTINGS``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import time
import warnings

import numpy as np
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from PIL import Image, UnidentifiedImageError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from alexnet_cifar.preprocess import CLASSES, to_model_input
from serving import metrics
from serving.model import LoadedModel, ModelHolder, RegistrySettings, describe

#: Every setting: name -> (default, meaning).
SETTINGS: dict[str, tuple[str, str]] = {
    "MLFLOW_TRACKING_URI": ("", "tracking server to load the model from (read by MLflow)"),
    "MODEL_NAME": ("alexnet-cifar10", "registered model"),
    "MODEL_ALIAS": ("champion", "alias to serve; the latest version when no version has it"),
    "MODEL_LOAD_TIMEOUT": ("120", "seconds to keep retrying the first load before the worker gives up"),
    "MODEL_POLL_SECONDS": ("30", "how often to check whether the alias moved (0 = never)"),
    "MAX_UPLOAD_BYTES": ("10485760", "largest request body; larger ones get 413"),
    "MAX_BATCH": ("64", "most images in one request"),
    "MAX_IMAGE_PIXELS": ("16000000", "largest decoded image (width x height); larger ones get 413 (a 4000x4000 upload raised peak memory by 213 MB as 16-bit greyscale, 305 MB as RGBA, measured)"),
}
RAW_TYPES = ("image/", "application/octet-stream")
KNOWN_METHODS = ("GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH")
#: Bodies this much over the limit are still read (and dropped) so the client sees the 413.
DRAIN_LIMIT = 64 << 20


class BadInput(Exception):
    """The request is wrong; ``status`` is the 4xx to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _setting(config: dict, name: str, kind=str):
    raw = config.get(name, os.environ.get(name) or SETTINGS[name][0])
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind.__name__}, not {raw!r}") from None


def decode_image(raw: bytes, where: str, max_pixels: int) -> np.ndarray:
    """Bytes of any image format Pillow reads -> the model's (32, 32, 3) uint8 input."""
    if not raw:
        raise BadInput(f"{where}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                if image.width * image.height > max_pixels:
                    raise BadInput(f"{where}: image is {image.width}x{image.height}, more than {max_pixels} pixels", 413)
                image.load()
                return to_model_input(image)
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"{where}: image has more than {max_pixels} pixels (MAX_IMAGE_PIXELS)", 413) from None
    except UnidentifiedImageError as error:
        raise BadInput(f"{where}: not an image Pillow can read ({error})") from None
    except Exception as error:  # noqa: BLE001 - truncated or corrupt data: Pillow's plugins raise many types
        raise BadInput(f"{where}: corrupt or truncated image ({type(error).__name__}: {error})") from None


def _index(value, count: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where} must be an integer, not {value!r}")
    if not 0 <= value < count:
        raise BadInput(f"{where} {value} is out of range: there are {count} sample images (0..{count - 1})" if count else "this model has no sample images")
    return value


def _b64(value, where: str) -> bytes:
    if not isinstance(value, str):
        raise BadInput(f"{where} must be a base64 string")
    if value[:5].lower() == "data:":
        if "," not in value:
            raise BadInput(f"{where} is a data URL without data (expected data:image/...;base64,...)")
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode("".join(value.split()), validate=True)  # line breaks as base64(1) prints them are fine
    except (binascii.Error, ValueError):
        raise BadInput(f"{where} is not valid base64") from None


def read_body() -> bytes:
    """The request body, refusing more than MAX_UPLOAD_BYTES also when it comes chunked (no Content-Length)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None:
        return request.get_data(cache=False)
    # Chunked: werkzeug would cut the body at the limit silently; read one byte more to tell.
    stream = request.environ["wsgi.input"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def read_inputs(model: LoadedModel, max_batch: int, max_pixels: int) -> tuple[np.ndarray, list[dict], bool]:
    """The request's images as a batch, what each one was, and whether a batch was asked for."""
    content_type = (request.mimetype or "").lower()
    images: list[np.ndarray] = []
    sources: list[dict] = []
    batch = False
    if content_type == "multipart/form-data":
        files = [f for name in request.files for f in request.files.getlist(name)]
        if not files:
            raise BadInput("no file in the form: send the image in a field named 'file'")
        if len(files) > max_batch:
            raise BadInput(f"{len(files)} files in one request; at most {max_batch} (MAX_BATCH)", 413)
        batch = len(files) > 1
        for upload in files:
            images.append(decode_image(upload.read(), upload.filename or f"field '{upload.name}'", max_pixels))
            sources.append({"filename": upload.filename})
    elif content_type == "application/json":
        try:
            body = json.loads(read_body())
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise BadInput('malformed JSON: expected an object such as {"index": 3} or {"image_base64": "..."}')
        count = len(model.sample_labels)
        if "index" in body:
            i = _index(body["index"], count, "index")
            images.append(model.sample_images[i])
            sources.append({"index": i, "true_label": CLASSES[int(model.sample_labels[i])]})
        elif "image_base64" in body:
            images.append(decode_image(_b64(body["image_base64"], "image_base64"), "image_base64", max_pixels))
            sources.append({})
        elif "indices" in body or "images_base64" in body:
            key = "indices" if "indices" in body else "images_base64"
            items = body[key]
            if not isinstance(items, list) or not items:
                raise BadInput(f"{key} must be a non-empty list")
            if len(items) > max_batch:
                raise BadInput(f"{len(items)} images in one request; at most {max_batch} (MAX_BATCH)", 413)
            batch = True
            for n, item in enumerate(items):
                if key == "indices":
                    i = _index(item, count, f"indices[{n}]")
                    images.append(model.sample_images[i])
                    sources.append({"index": i, "true_label": CLASSES[int(model.sample_labels[i])]})
                else:
                    images.append(decode_image(_b64(item, f"images_base64[{n}]"), f"images_base64[{n}]", max_pixels))
                    sources.append({})
        else:
            raise BadInput('JSON needs one of "index", "indices", "image_base64", "images_base64"')
    elif content_type.startswith(RAW_TYPES):
        images.append(decode_image(read_body(), "request body", max_pixels))
        sources.append({})
    else:
        raise BadInput(
            f"unsupported content type {content_type or '(none)'!r}: send multipart/form-data, an image/* body or JSON", 415
        )
    return np.stack(images), sources, batch


bp = Blueprint("serving", __name__)


@bp.get("/")
def index():
    """The page: sample grid, index picker, upload form."""
    model = current_app.extensions["model_holder"].current
    samples = []
    if model is not None:
        for i, (image, label) in enumerate(zip(model.sample_images, model.sample_labels)):
            buffer = io.BytesIO()
            Image.fromarray(image).resize((64, 64), Image.Resampling.NEAREST).save(buffer, "PNG")
            samples.append({"index": i, "label": CLASSES[int(label)], "png": base64.b64encode(buffer.getvalue()).decode()})
    return render_template("index.html", samples=samples, model=model, holder=current_app.extensions["model_holder"])


@bp.post("/predict")
def predict():
    """Classify one image or a batch."""
    model = current_app.extensions["model_holder"].current  # one reference for the whole request
    if model is None:
        return jsonify(error="the model is not loaded yet"), 503
    images, sources, batch = read_inputs(model, current_app.config["MAX_BATCH"], current_app.config["MAX_IMAGE_PIXELS"])
    probabilities = model.probabilities(images)
    if not np.isfinite(probabilities).all():
        return jsonify(error=f"model version {model.version} produced non-finite output; it cannot be served"), 500
    answers = [{**describe(p, model.version), **source} for p, source in zip(probabilities, sources)]
    metrics.PREDICTED_IMAGES.inc(len(answers))
    if batch:
        return jsonify(predictions=answers, model_version=model.version)
    return jsonify(answers[0])


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """A model is loaded (it stays ready while the tracking server is away)."""
    holder = current_app.extensions["model_holder"]
    if holder.current is None:
        return jsonify(status="loading", error=holder.last_error), 503
    return jsonify(status="ready", model_version=holder.current.version, model_uri=holder.current.uri)


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus metrics of every worker."""
    body, content_type = metrics.render()
    return body, 200, {"Content-Type": content_type}


def _drain_oversized_body() -> None:
    # Read (and drop) a too-large body before answering 413: closing a socket with
    # unread data makes the kernel reset the connection, and the client would see a
    # reset instead of the 413.
    stream = request.environ.get("wsgi.input")
    remaining = min(request.content_length or 0, DRAIN_LIMIT)
    while stream is not None and remaining > 0:
        chunk = stream.read(min(remaining, 1 << 16))
        if not chunk:
            break
        remaining -= len(chunk)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. ``test_config`` may hold settings and a ready ``MODEL_HOLDER``."""
    config = dict(test_config or {})
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=_setting(config, "MAX_UPLOAD_BYTES", int),
        MAX_BATCH=_setting(config, "MAX_BATCH", int),
        MAX_IMAGE_PIXELS=_setting(config, "MAX_IMAGE_PIXELS", int),
        MAX_FORM_MEMORY_SIZE=None,  # the body limit above covers forms too
    )
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    app.config.setdefault("MAX_FORM_PARTS", 1000)
    for name in ("MAX_BATCH", "MAX_IMAGE_PIXELS", "MAX_CONTENT_LENGTH"):
        if app.config[name] < 1:
            raise ValueError(f"{'MAX_UPLOAD_BYTES' if name == 'MAX_CONTENT_LENGTH' else name} must be at least 1")
    holder = config.get("MODEL_HOLDER")
    if holder is None:
        holder = ModelHolder(
            RegistrySettings(
                name=_setting(config, "MODEL_NAME"),
                alias=_setting(config, "MODEL_ALIAS"),
                load_timeout=_setting(config, "MODEL_LOAD_TIMEOUT", float),
                poll_seconds=_setting(config, "MODEL_POLL_SECONDS", float),
            )
        )
        holder.load()
        holder.start_watching()
    app.extensions["model_holder"] = holder
    # Pillow's own bomb guard (checked while it opens a file, before our size check) follows the setting.
    Image.MAX_IMAGE_PIXELS = app.config["MAX_IMAGE_PIXELS"]
    if holder.current is not None:
        metrics.MODEL_VERSION.set(float(holder.current.version) if holder.current.version.isdigit() else 0)

    @app.before_request
    def start_timer():
        request.environ["serving.started"] = time.perf_counter()
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            _drain_oversized_body()
            raise RequestEntityTooLarge()

    @app.after_request
    def record(response):
        started = request.environ.get("serving.started")
        endpoint = request.url_rule.rule if request.url_rule else "unknown"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"  # bounded label values
        metrics.REQUESTS.labels(endpoint=endpoint, method=method, status=str(response.status_code)).inc()
        if started is not None:
            metrics.LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        current = app.extensions["model_holder"].current
        if current is not None and current.version.isdigit():
            metrics.MODEL_VERSION.set(float(current.version))
        return response

    @app.errorhandler(BadInput)
    def bad_input(error: BadInput):
        return jsonify(error=str(error)), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        message = error.description
        if isinstance(error, RequestEntityTooLarge):
            too_big = request.content_length is None or request.content_length > app.config["MAX_CONTENT_LENGTH"]
            message = (
                f"request body larger than {app.config['MAX_CONTENT_LENGTH']} bytes (MAX_UPLOAD_BYTES)"
                if too_big
                else f"too many form parts (at most {app.config['MAX_FORM_PARTS']})"
            )
        response = jsonify(error=message)
        response.status_code = error.code
        for name, value in error.get_headers():
            if name.lower() == "allow":  # 405 says which methods work
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unexpected error")
        return jsonify(error=f"internal error: {type(error).__name__}"), 500

    app.register_blueprint(bp)
    return app
