"""Where the project looks for things on a developer's machine."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The real CIFAR-10 (JPEG image tree) that the workplace keeps beside the clone.
SHARED_CIFAR10 = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def local_cifar10() -> Path | None:
    """``CIFAR10_DATA`` if set, else the shared copy beside the clone if present, else None."""
    if os.environ.get("CIFAR10_DATA"):
        return Path(os.environ["CIFAR10_DATA"]).expanduser()
    return SHARED_CIFAR10 if SHARED_CIFAR10.is_file() else None
