"""The ranks' TensorFlow processes that a test's own cluster started, for "nothing orphaned"."""

from __future__ import annotations

import time

import psutil


def tf_children() -> list[psutil.Process]:
    """TensorFlow rank processes still alive under this test process (its cluster's nannies and
    workers are its descendants); other processes on the machine are not looked at."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            args = process.cmdline()
        except psutil.Error:
            continue
        if args[1:3] == ["-m", "lepton_lab.training.tf_child"]:
            found.append(process)
    return found


def wait_no_children(timeout: float = 15.0) -> list[psutil.Process]:
    """The rank processes left after waiting up to ``timeout`` for them to go."""
    deadline = time.monotonic() + timeout
    while tf_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    return tf_children()
