"""Backends chosen by name: one table per kind, names taken from the config's types.

A registry maps each name to `"module:Class"`, imported only when that
backend is used, so a Pi without mediapipe or a desktop without a window
system never imports what it cannot load (picamera2's "save low-powered Pis
from importing av unless it is needed"). Where the config restricts a name
to a `Literal`, the registry is built from that same `Literal` and refuses
to start if the two differ, so the error that lists the valid names cannot
drift from what the config accepts.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar, get_args

T = TypeVar("T")


class Registry(Generic[T]):
    """`name -> "module:Class"` for one kind of backend (detector, sink, ...)."""

    def __init__(
        self,
        kind: str,
        entries: dict[str, str],
        error: type[Exception],
        names: Any = None,
    ) -> None:
        """`names`: the config's `Literal` type; every one of its names (and no
        other) must have an entry. `error` is raised for an unknown name."""
        if names is not None and set(get_args(names)) != set(entries):
            raise RuntimeError(
                f"{kind} registry {sorted(entries)} does not match the config's "
                f"names {sorted(get_args(names))}"
            )
        self.kind = kind
        self.error = error
        self._entries = dict(entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def load(self, name: str) -> type[T]:
        """The class registered as `name`, imported now."""
        try:
            target = self._entries[name]
        except KeyError:
            raise self.error(
                f"unknown {self.kind} {name!r}: use one of {', '.join(self.names)}"
            ) from None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
