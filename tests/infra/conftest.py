"""Fixtures of the infra tests; the mocks and the recording live in tests/infra/harness.py."""

from __future__ import annotations

import pytest

from tests.infra.harness import STACKS, ProgramRun, stack_run


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    """Each committed stack in turn."""
    return request.param


@pytest.fixture
def run(stack) -> ProgramRun:
    """The whole program run for the stack."""
    return stack_run(stack)


@pytest.fixture
def runs() -> dict[str, ProgramRun]:
    """All three stack runs."""
    return {s: stack_run(s) for s in STACKS}
