"""Pulumi entry point (Pulumi.yaml: main: infra/)."""

import os
import sys

# Pulumi runs this directory as a script; make the repository root importable so
# `infra` resolves as a package even when the project is not pip-installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from infra.config import load_config  # noqa: E402
from infra.outputs import export  # noqa: E402
from infra.program import build  # noqa: E402

export(build(load_config()))
