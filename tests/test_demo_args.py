"""``make demo``'s trainer arguments: its 2-epoch default survives extra options."""

from __future__ import annotations

import pytest

from devstack.demo import option_value, with_defaults


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], ["--epochs", "2"]),
        (["--run-key", "k"], ["--epochs", "2", "--run-key", "k"]),
        (["--epochs", "10"], ["--epochs", "10"]),
        (["--epochs=7", "--no-progress"], ["--epochs=7", "--no-progress"]),
    ],
)
def test_demo_defaults_stay_unless_overridden(given, expected):
    assert with_defaults(given) == expected


def test_option_values_in_both_spellings():
    assert option_value(["--run-key", "a"], "--run-key") == "a"
    assert option_value(["--run-key=b"], "--run-key") == "b"
    assert option_value(["--run-keys", "c"], "--run-key") is None
    assert option_value(["--run-key"], "--run-key") is None
