"""Facts about the machine a run executes on, honouring container limits."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from alexnet_cifar.cpus import CGROUP_ROOT, usable_cpus

__all__ = ["CGROUP_ROOT", "cpu_model", "git_commit", "memory_bytes", "usable_cpus"]


def cpu_model() -> str:
    """The CPU's marketing name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes(cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """Memory this process may use: physical memory, capped by the cgroup limit."""
    total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file in (cgroup_root / "memory.max", cgroup_root / "memory" / "memory.limit_in_bytes"):
        try:
            value = limit_file.read_text().strip()
        except OSError:
            continue
        if value.isdigit() and (total is None or int(value) < total):
            total = int(value)
    return total


def cpu_flags() -> set[str]:
    """The CPU feature flags (avx512_bf16, amx_bf16, ...)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def git_commit() -> str | None:
    """The source's git commit: ``GIT_COMMIT`` (set in images) or ``git rev-parse``."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
