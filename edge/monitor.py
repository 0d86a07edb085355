"""`emotion-edge monitor mqtt://broker`: one screen for a fleet.

Every device under the topic prefix keeps its availability and state
retained on the broker, so subscribing to `<prefix>/+/availability` and
`<prefix>/+/state` gives the whole fleet at once, then each change as it
happens. The table is redrawn every second: online, faces, emotion, FPS, and
how long ago each device last said something, by the device's own clock (a
retained message arrives at once, however old). An offline device shows no
figures: the last ones it sent describe the past. A broker that cannot be
reached or refuses the login is one line and exit 1, not an empty table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from edge.broker import PASSWORD_ENV, parse_url

CONNECT_S = 10.0  # how long to wait for the broker before saying it cannot be reached


class MonitorError(RuntimeError):
    """The broker cannot be reached or refused us; the message says what to check."""


def age_s(state: dict, now_wall: float) -> float | None:
    """Seconds since the device sent `state` (its own `t`), None if it does not say."""
    try:
        return max(0.0, now_wall - dt.datetime.fromisoformat(state["t"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Device:
    online: bool | None = None
    state: dict = field(default_factory=dict)
    seen: float = 0.0  # monotonic time of its last message


class Fleet:
    """The devices under a prefix, as their retained messages describe them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.strip("/")
        self.devices: dict[str, Device] = {}
        self.lock = threading.Lock()

    def topics(self) -> list[str]:
        return [f"{self.prefix}/+/availability", f"{self.prefix}/+/state"]

    def update(self, topic: str, payload: bytes, now: float) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or "/".join(parts[:-2]) != self.prefix:
            return
        name, kind = parts[-2], parts[-1]
        with self.lock:
            device = self.devices.setdefault(name, Device())
            device.seen = now
            if kind == "availability":
                device.online = payload == b"online"
            elif kind == "state":
                with contextlib.suppress(ValueError):  # not ours: keep the last good one
                    device.state = json.loads(payload)

    def table(self, now: float, now_wall: float | None = None) -> str:
        now_wall = time.time() if now_wall is None else now_wall
        rows = [("device", "online", "faces", "emotion", "fps", "last seen")]
        with self.lock:
            for name in sorted(self.devices):
                device = self.devices[name]
                state = device.state if device.online is not False else {}
                age = age_s(device.state, now_wall)
                rows.append(
                    (
                        name,
                        {True: "yes", False: "NO", None: "?"}[device.online],
                        str(state.get("faces", "-")),
                        str(state.get("emotion", "-")),
                        f"{state['fps']:.1f}" if "fps" in state else "-",
                        f"{age:.0f} s ago" if age is not None else "-",
                    )
                )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        return "\n".join(lines) + f"\n{len(rows) - 1} device(s)\n"


def monitor(
    url: str,
    prefix: str = "emotion-edge",
    username: str = "",
    seconds: float = 0.0,
    out: TextIO = sys.stdout,
    ca_file: str = "",
) -> int:
    """Show the fleet until interrupted, or for `seconds` and print the table once."""
    import os

    import paho.mqtt.client as mqtt

    broker = parse_url(url)
    fleet = Fleet(prefix)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if username:
        client.username_pw_set(username, os.environ.get(PASSWORD_ENV) or None)
    if broker.tls:
        client.tls_set(ca_certs=ca_file or None)
    answered = threading.Event()
    refused: list[str] = []

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        else:
            for topic in fleet.topics():
                c.subscribe(topic, qos=1)
        answered.set()

    client.on_connect = on_connect
    client.on_message = lambda c, u, m: fleet.update(m.topic, m.payload, time.monotonic())
    where = f"{broker.host}:{broker.port}"
    try:
        client.connect(broker.host, broker.port)
    except (OSError, ValueError) as exc:
        raise MonitorError(
            f"MQTT broker {where} cannot be reached ({exc}): check the URL"
        ) from None
    client.loop_start()
    try:
        if not answered.wait(CONNECT_S):
            raise MonitorError(f"MQTT broker {where} did not answer in {CONNECT_S:g} s")
        if refused:
            raise MonitorError(
                f"MQTT broker {where} refused the connection ({refused[0]}): check "
                f"--username and {PASSWORD_ENV}"
            )
        if seconds:
            time.sleep(seconds)
            out.write(fleet.table(time.monotonic()))
            return 0
        while True:
            out.write("\x1b[2J\x1b[H" + f"{url} {prefix}/\n\n" + fleet.table(time.monotonic()))
            out.flush()
            time.sleep(1.0)
    except KeyboardInterrupt:
        return 0
    finally:
        client.loop_stop()
        client.disconnect()
