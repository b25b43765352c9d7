"""CPU and memory limits, including container quotas."""

import os

import pytest

from trainer import hostinfo


def _affinity():
    return len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_caps_threads(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert hostinfo.usable_cpus(tmp_path) == 1


def test_fractional_quota_rounds_up(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert hostinfo.usable_cpus(tmp_path) == min(2, _affinity())


def test_quota_above_cores_does_not_add_threads(tmp_path):
    (tmp_path / "cpu.max").write_text("1600000 100000\n")
    assert hostinfo.usable_cpus(tmp_path) == _affinity()


def test_unlimited_quota_uses_the_affinity_mask(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert hostinfo.usable_cpus(tmp_path) == _affinity()


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert hostinfo.usable_cpus(tmp_path) == 1


def test_cgroup_v1_unlimited(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert hostinfo.usable_cpus(tmp_path) == _affinity()


def test_garbage_in_cgroup_files_is_ignored(tmp_path):
    (tmp_path / "cpu.max").write_text("nonsense\n")
    assert hostinfo.usable_cpus(tmp_path) == _affinity()


def test_memory_limit_caps_physical_memory(tmp_path):
    (tmp_path / "memory.max").write_text(str(512 * 2**20))
    assert hostinfo.memory_bytes(tmp_path) == 512 * 2**20
    (tmp_path / "memory.max").write_text("max")
    assert hostinfo.memory_bytes(tmp_path) > 512 * 2**20


def test_git_commit_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert hostinfo.git_commit() == "abc123"


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux only")
def test_cpu_model_is_read():
    assert hostinfo.cpu_model()
