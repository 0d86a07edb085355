"""A bounded first-in, first-out queue of messages on disk, for an MQTT broker
that is not there right now.

Events must survive a broker restart, a network drop and a restart of this
process alike, so they wait in a SQLite file (one table, an autoincrement
key keeps the order) until the broker acknowledges them. The file is capped
at `max_bytes` of payload: past it the oldest messages are dropped and
counted, so a broker gone for a month cannot fill the SD card. SQLite in WAL
mode with `synchronous=NORMAL` survives a power cut with at most the last
transactions lost, and never a corrupt file.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Spool:
    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL)"
        )
        self._bytes = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages"
        ).fetchone()[0]

    def put(self, topic: str, payload: bytes) -> int:
        """Queue a message; returns how many old ones were dropped to make room."""
        with self._lock:
            self._db.execute(
                "INSERT INTO messages (topic, payload) VALUES (?, ?)", (topic, payload)
            )
            self._bytes += len(payload)
            dropped = 0
            while self._bytes > self.max_bytes:
                row = self._db.execute(
                    "SELECT id, LENGTH(payload) FROM messages ORDER BY id LIMIT 1"
                ).fetchone()
                if row is None:
                    break
                self._db.execute("DELETE FROM messages WHERE id = ?", (row[0],))
                self._bytes -= row[1]
                dropped += 1
            self.dropped += dropped
            return dropped

    def peek(self, limit: int = 100) -> list[tuple[int, str, bytes]]:
        """The oldest messages, in order, still queued."""
        with self._lock:
            return self._db.execute(
                "SELECT id, topic, payload FROM messages ORDER BY id LIMIT ?", (limit,)
            ).fetchall()

    def remove(self, ids: list[int]) -> None:
        """Forget messages the broker has acknowledged."""
        if not ids:
            return
        with self._lock:
            sizes = self._db.execute(
                f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchone()[0]
            self._db.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(ids))})", ids)
            self._bytes -= sizes

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
