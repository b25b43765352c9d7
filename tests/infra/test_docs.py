"""The README's Clouds section states what the code does: every config key with its default and stack values, every
output with its secrecy, and the resource counts the program registers."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from infra import outputs
from tests.infra.harness import ROOT, STACKS, project_defaults, stack_file_values, stack_run

README = ROOT / "README.md"


def clouds_section() -> str:
    """The README from its "## Clouds" heading to the next second-level heading."""
    text = README.read_text()
    start = text.index("\n## Clouds")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row whose first cell starts with a `code` span."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def shown(value) -> str:
    """How a default or stack value is written in the doc's tables."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value) if value else "-"
    if value == "":
        return "-"
    return f"`{value}`"


def config_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for cells in table_rows(text):
        if len(cells) == 7:
            for key in re.findall(r"`([A-Za-z]+)`", cells[0]):
                rows[key] = cells
    return rows


def test_every_config_key_is_documented_with_its_default_and_stack_values():
    rows = config_rows(clouds_section())
    defaults = project_defaults()
    assert set(rows) == set(defaults) | {"cloud"}, sorted(set(rows) ^ (set(defaults) | {"cloud"}))
    for key, cells in rows.items():
        default_cell = cells[2]
        if key in defaults and defaults[key] not in ("", []):
            expected = json.dumps(defaults[key]) if isinstance(defaults[key], list) else shown(defaults[key])
            assert default_cell.strip("`") == expected.strip("`"), (key, default_cell, expected)
        else:
            assert default_cell in ("-", '`""`'), (key, default_cell)
        for stack, cell in zip(STACKS, cells[3:6]):
            value = stack_file_values(stack).get(key)
            if value is not None:
                assert cell == shown(value), (key, stack, cell, shown(value))


def test_every_output_is_documented_with_its_secrecy():
    rows = {cells[0].strip("`"): cells for cells in table_rows(clouds_section()) if len(cells) == 3}
    assert set(rows) == set(outputs.ALL)
    for key, cells in rows.items():
        assert (cells[1] == "yes") == (key in outputs.SECRET), key


@pytest.mark.parametrize("stack", STACKS)
def test_documented_resource_counts_are_what_the_program_registers(stack):
    line = next(line for line in clouds_section().splitlines() if line.startswith("| Resources registered"))
    cells = [c.strip() for c in line.strip().strip("|").split("|")][1:]
    documented = dict(zip(STACKS, cells))[stack]
    counts = Counter()
    for r in stack_run(stack).registrations:
        if r.custom:
            counts["provider" if r.typ.startswith("pulumi:providers:") else r.typ.split(":")[0]] += 1
    expected = (f"{sum(counts.values())} ({counts[stack]} + {counts['kubernetes']} + {counts['random']} + "
                f"{counts['provider']})")
    assert documented == expected
