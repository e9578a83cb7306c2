"""Which process owns a record (a run's driver, a deployment's supervisor), and whether it is
still there: rows left live by a process that was killed are ended by whoever reads them next
on the same host, instead of showing as running for ever."""

from __future__ import annotations

import os
import socket
import sys


def identity() -> str:
    """This process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone(owner: str | None) -> int | None:
    """The pid of ``owner`` (``host:pid``) when it is a process of this host that no longer
    exists; None when it lives, is elsewhere (it cannot be checked from here) or is unknown."""
    import psutil

    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return None if psutil.pid_exists(int(pid)) else int(pid)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when ``parent`` (the process that started it: a
    Dask worker for a TensorFlow rank, a supervisor for a model server) dies; exit at once if
    it already has."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux's libc: the caller's own watch (a pipe, a poll) must end it
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(3)
