"""How many CPUs this process may really use, honouring cgroup quotas.

Shared by the trainer (torch threads) and the inference service (workers x threads).
"""

from __future__ import annotations

import math
import os
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
