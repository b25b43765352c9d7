"""Facts about the machine a run executes on, honouring container limits."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_cpu_limit(root: Path) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 CFS files), or None."""
    cpu_max = root / "cpu.max"
    try:
        if cpu_max.is_file():
            quota, period = cpu_max.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" if (root / "cpu").is_dir() else root
        quota_file, period_file = v1 / "cpu.cfs_quota_us", v1 / "cpu.cfs_period_us"
        if quota_file.is_file() and period_file.is_file():
            quota, period = int(quota_file.read_text()), int(period_file.read_text())
            return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may really use: the affinity mask, capped by the cgroup quota.

    On Kubernetes a pod with a 2-CPU limit on a 16-core node sees 16 CPUs in its
    affinity mask but is throttled to 2; running 16 threads there is much slower.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


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
