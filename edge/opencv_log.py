"""OpenCV's own log level, on OpenCV 4 and 5 alike.

OpenCV 4 (Raspberry Pi OS Bookworm's pin) has `cv2.getLogLevel` and
`cv2.setLogLevel`; OpenCV 5 (Trixie's) has them only as
`cv2.utils.logging.getLogLevel` / `setLogLevel` (the module OpenCV 4's wheels
lack). The levels are the same numbers in both (`LOG_LEVEL_SILENT` = 0 ...
`LOG_LEVEL_ERROR` = 2, opencv2/core/utils/logger.defines.hpp). Where neither
exists, the level is left as it is: a quiet log is a nicety, never a reason
for a camera to fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import cv2

SILENT = 0
ERROR = 2


def _functions() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) from whichever place this OpenCV keeps them; None if neither."""
    if hasattr(cv2, "getLogLevel") and hasattr(cv2, "setLogLevel"):  # OpenCV 4
        return cv2.getLogLevel, cv2.setLogLevel
    logging = getattr(getattr(cv2, "utils", None), "logging", None)  # OpenCV 5
    if logging is not None and hasattr(logging, "getLogLevel"):
        return logging.getLogLevel, logging.setLogLevel
    return None


def set_level(level: int) -> int | None:
    """Set OpenCV's log level; the level it had (None where it cannot be set)."""
    functions = _functions()
    if functions is None:
        return None
    get, set_ = functions
    before = int(get())
    set_(level)
    return before


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """OpenCV silent inside the block, as it was after."""
    before = set_level(SILENT)
    try:
        yield
    finally:
        if before is not None:
            set_level(before)
