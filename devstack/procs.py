"""Small helpers for services run as child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound."""
    with socket.socket() as sock:
        # As servers bind: a socket of a just-stopped server in TIME-WAIT does not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(ready: Callable[[], bool], timeout: float, process: subprocess.Popen | None = None, what: str = "service") -> None:
    """Poll ``ready`` until it is true; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if ready():
                return
        except Exception:  # not ready yet: connection refused, 503, ...
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} was not ready within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group started with ``start_new_session=True``, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
    except ProcessLookupError:
        pass


def start_service(
    command: list[str],
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.Popen:
    """Start ``command`` in its own process group, logging to ``log_path``, and wait until ``ready``.

    On failure the process group is stopped and the error carries the log's tail.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=cwd)
    try:
        wait_until(ready, timeout, process, what)
    except (RuntimeError, TimeoutError) as error:
        stop_process_group(process)
        raise RuntimeError(f"{error}; its log ({log_path}) ends with:\n{tail(log_path)}") from error
    return process


def children_rss_mib(parent: int) -> dict[int, float]:
    """Resident memory (MiB) of each direct child of ``parent`` (e.g. gunicorn's workers), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == parent and "VmRSS" in fields:
            found[int(entry.name)] = int(fields["VmRSS"].split()[0]) / 1024
    return found

