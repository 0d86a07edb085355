"""Size-capped output files: a year of events or recordings cannot fill the SD card.

`events.jsonl` past its size becomes `events.1.jsonl` (the older ones shift
to `.2`, `.3` ...; the one past `keep` is deleted), and writing goes on in a
fresh `events.jsonl`, like logrotate. The extension stays last, so players
and tools still recognise a rotated file.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def numbered(path: Path, n: int) -> Path:
    """`events.jsonl`, 2 -> `events.2.jsonl`."""
    return path.with_name(f"{path.stem}.{n}{path.suffix}")


def rotate(path: Path, keep: int) -> None:
    """Move `path` to its `.1` name, shifting older ones up; at most `keep` are kept."""
    numbered(path, keep + 1).unlink(missing_ok=True)
    for n in range(keep, 0, -1):
        older = numbered(path, n)
        if older.exists():
            if n == keep:
                older.unlink()
            else:
                older.rename(numbered(path, n + 1))
    if path.exists():
        if keep:
            path.rename(numbered(path, 1))
        else:
            path.unlink()
    log.info("%s rotated (keeping %d older)", path, keep)


def free_mb(path: Path) -> float:
    """Free space where `path` is written, in MB (inf if it cannot be told)."""
    try:
        return shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free / 1e6
    except OSError:
        return float("inf")
