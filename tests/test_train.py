"""Augmentation and the training loop, on real images."""

import numpy as np
import pytest
import torch

from alexnet_cifar.model import AlexNet
from trainer.train import TrainSettings, augment, autocast, evaluate, prepare_model, seed_everything, train


def _batch(n=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))


def test_augment_keeps_shape_and_dtype():
    images = _batch()
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_augment_is_deterministic_for_a_seed():
    images = _batch()
    a = augment(images, torch.Generator().manual_seed(3))
    b = augment(images, torch.Generator().manual_seed(3))
    c = augment(images, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_every_output_is_a_padded_window_of_its_input_maybe_flipped():
    images, padding = _batch(32), 4
    out = augment(images, torch.Generator().manual_seed(1), padding=padding)
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (padding,) * 4).permute(0, 2, 3, 1)
    flips = 0
    for i in range(len(images)):
        windows = [padded[i, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(1)) for w in windows)
        assert plain or flipped, f"image {i} is not a crop of its padded input"
        flips += flipped and not plain
    assert 4 <= flips <= 28, "about half the images should be flipped"


def test_augment_off_is_identity():
    images = _batch()
    assert torch.equal(augment(images, torch.Generator(), padding=0, flip=False), images)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        autocast("fp8")


def _tiny_run(real_sample, settings):
    x_train, y_train = real_sample.arrays("train", 30)
    x_test, y_test = real_sample.arrays("test", 10)
    seed_everything(settings.seed)
    model = prepare_model(AlexNet(), settings)
    return train(model, x_train, y_train, x_test, y_test, settings)


@pytest.mark.parametrize("precision, channels_last", [("fp32", False), ("bf16", True)])
def test_same_seed_gives_the_same_run(real_sample, precision, channels_last):
    settings = TrainSettings(epochs=1, batch_size=50, seed=7, precision=precision, channels_last=channels_last)
    first = _tiny_run(real_sample, settings)[0]
    second = _tiny_run(real_sample, settings)[0]
    assert (first.train_loss, first.test_loss, first.test_accuracy) == (second.train_loss, second.test_loss, second.test_accuracy)
    other = _tiny_run(real_sample, TrainSettings(epochs=1, batch_size=50, seed=8, precision=precision, channels_last=channels_last))[0]
    assert other.train_loss != first.train_loss


@pytest.mark.parametrize("steps", [1, 2, 4, 7, 8])
def test_runs_too_short_for_a_one_cycle_schedule_still_train(real_sample, steps):
    """300 images in batches of 300 // steps: OneCycleLR would divide by zero at exactly 4 steps."""
    results = _tiny_run(real_sample, TrainSettings(epochs=1, batch_size=300 // steps, seed=7, precision="fp32"))
    assert len(results) == 1 and results[0].train_loss > 0


def test_a_checkpoint_from_other_settings_is_refused(real_sample):
    from trainer.train import ResumeError

    settings = TrainSettings(epochs=2, batch_size=100, seed=7, precision="fp32")
    states = []
    x_train, y_train = real_sample.arrays("train", 30)
    x_test, y_test = real_sample.arrays("test", 10)
    seed_everything(settings.seed)
    train(prepare_model(AlexNet(), settings), x_train, y_train, x_test, y_test, settings, on_checkpoint=states.append)
    assert [s["epoch"] for s in states] == [1, 2]
    with pytest.raises(ResumeError, match="epochs 2 -> 3"):
        train(prepare_model(AlexNet(), settings), x_train, y_train, x_test, y_test, TrainSettings(epochs=3, batch_size=100, seed=7, precision="fp32"), resume=states[0])


@pytest.mark.slow
def test_short_real_training_learns(real_sample):
    """500 real images per class, 5 epochs: loss falls and held-out accuracy clearly beats chance."""
    torch.set_num_threads(2)
    x_train, y_train = real_sample.arrays("train", 500)
    x_test, y_test = real_sample.arrays("test", 100)
    settings = TrainSettings(epochs=5, batch_size=128, lr=0.05, seed=0)
    seed_everything(settings.seed)
    model = prepare_model(AlexNet(), settings)
    _, accuracy_before, _ = evaluate(model, torch.from_numpy(x_test), torch.from_numpy(y_test))
    results = train(model, x_train, y_train, x_test, y_test, settings)
    losses = [r.train_loss for r in results]
    assert losses[-1] < losses[0] * 0.85, losses
    assert results[-1].test_accuracy >= 0.25, f"held-out accuracy {results[-1].test_accuracy:.3f} (chance is 0.10; before training {accuracy_before:.3f})"
    assert all(r.images_per_second > 0 and r.epoch_time > 0 for r in results)
    assert len(results[-1].predictions) == len(y_test)
