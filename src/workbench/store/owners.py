"""Who does some work (`host:pid:start`: training leases, MLflow runs), and whether that process lives on to finish it.

A crashed process leaves its work marked as in progress; the next process must tell "busy" from
"abandoned". On this host the process table answers: no such pid, a zombie (state Z: it has exited,
only its parent has not reaped it), or a pid now used by a process that started at another time all
mean dead. On another host only a heartbeat can: work whose last heartbeat is older than a timeout is
abandoned.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

HOST = socket.gethostname()
DEAD_STATES = frozenset("ZXx")  # zombie, dead (see proc(5))
NO_START = "-"  # where the process start time cannot be read (no /proc)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on, or None if there is no such process (or no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the command name (field 2) may hold spaces and parentheses


def _exists(pid: int) -> bool:
    """Whether a process with this pid exists (zombies included); for systems without /proc."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> str:
    """When the process started (clock ticks since boot, field 22 of /proc/<pid>/stat), or NO_START."""
    fields = _stat_fields(pid)
    return fields[19] if fields else NO_START


def this_process() -> str:
    """The owner token of the calling process: `host:pid:start`."""
    return f"{HOST}:{os.getpid()}:{process_start(os.getpid())}"


def on_this_host(owner: str) -> bool:
    """Whether `owner` (`host:pid:...`) names a process of this host, which `why_dead` can judge."""
    host, _, rest = owner.partition(":")
    return host == HOST and rest.split(":")[0].isdigit()


def why_dead(owner: str) -> str | None:
    """In words, why the owner process is gone; None if it is alive or on another host (cannot tell).

    `owner` is `host:pid:start`, optionally followed by `:anything` (a runner's own suffix).
    """
    host, pid_text, start = [*owner.split(":"), "", ""][:3]
    if host != HOST or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if not Path("/proc/self/stat").exists():
        return None if _exists(pid) else f"its owner {owner} is gone (no process {pid} on {host})"
    fields = _stat_fields(pid)
    if fields is None:
        return f"its owner {owner} is gone (no process {pid} on {host})"
    if fields[0] in DEAD_STATES:
        return f"its owner {owner} has exited (process {pid} is a zombie, state {fields[0]})"
    if start != NO_START and fields[19] != start:
        return f"its owner {owner} is gone (pid {pid} now belongs to a process started later)"
    return None


def why_abandoned(owner: str | None, heartbeat_ms: int | None, timeout_s: float) -> str | None:
    """In words, why work marked by `owner` with its last heartbeat at `heartbeat_ms` is abandoned, else None."""
    if owner:
        dead = why_dead(owner)
        if dead:
            return dead
    if heartbeat_ms is None:
        return None
    age_s = time.time() - heartbeat_ms / 1000
    if age_s > timeout_s:
        return f"no heartbeat from {owner or 'its owner'} for {age_s:.0f} s (timeout {timeout_s:g} s)"
    return None
