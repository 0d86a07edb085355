"""Native libraries' own stderr lines, turned into the project's log lines.

LiteRT prints `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` from
C++ when an interpreter is made, straight to file descriptor 2, whatever
Python's logging says; no environment variable or API turns it down
(TF_CPP_MIN_LOG_LEVEL and GLOG_minloglevel were tried: docs/benchmarks.md).
Under systemd that is a journal line on every (re)start.

`native_lines` points descriptor 2 at a temporary file for the few calls that
print (making an interpreter), then logs what was written there through the
`edge.native` logger: INFO lines at DEBUG (seen with `--verbose`), anything
else at WARNING, so a native warning or error is never lost, only given the
project's format. The project's own log handler writes to a copy of the
original descriptor (`log_stream`), so its lines are never caught in the
file, whichever thread writes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TextIO

log = logging.getLogger("edge.native")

CHATTER = ("INFO: ", "I0000 ")
"""Prefixes of the native libraries' informational lines."""

_lock = threading.Lock()  # one redirection at a time: descriptor 2 is the process's


def log_stream() -> TextIO:
    """A text stream on a copy of stderr's descriptor: where the project's log
    lines go, untouched while `native_lines` redirects descriptor 2."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, errors="replace")
    except (AttributeError, OSError, ValueError):  # no real descriptor (a test's capture)
        return sys.stderr


@contextlib.contextmanager
def native_lines() -> Iterator[None]:
    """Catch what native code writes to stderr inside the block, and log it."""
    try:
        stderr_fd = sys.__stderr__.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    with _lock, tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(stderr_fd)
        os.dup2(caught.fileno(), stderr_fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
    for line in text.splitlines():
        if line.strip():
            level = logging.DEBUG if line.startswith(CHATTER) else logging.WARNING
            log.log(level, "%s", line.rstrip())
