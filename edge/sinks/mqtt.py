"""Events and state to an MQTT broker, with Home Assistant discovery: a fleet
of Pis reports to one place, in the topics and payloads docs/mqtt.md and
docs/mqtt.schema.json define.

    <prefix>/<device>/availability   online / offline, retained; the last will says offline
    <prefix>/<device>/state          retained JSON: faces, emotion, labels, fps, latency
    <prefix>/<device>/events         QoS 1 JSON per track event: appeared, changed, left
    <discovery_prefix>/<component>/<device>/<object>/config   retained, for Home Assistant

The pipeline's output thread only turns a frame into events and queues them
on disk (`Spool`); paho-mqtt's network thread and one sender thread do the
rest, so a broker that is slow, down or unreachable never slows the pipeline.
Events wait in the spool until the broker acknowledges them (QoS 1, at
least once: after an outage a subscriber may see an event twice, and `seq`
tells it so), in order, across reconnects and restarts; the state is retained and only the
newest matters, so it is not spooled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np

from edge import __version__
from edge.broker import PASSWORD_ENV, parse_url
from edge.frames import Face, Result
from edge.pause import PauseSwitch
from edge.sinks.base import Sink, SinkContext, SinkError
from edge.sinks.spool import Spool
from edge.track_events import TrackEvent, TrackEvents
from edge.web.address import page_url

if TYPE_CHECKING:
    from edge.config import MqttConfig

log = logging.getLogger(__name__)

STATE_DEBOUNCE_S = 1.0  # a changed state goes out at most this often
FLUSH_S = 3.0  # on a clean exit: time given to queued events before `offline`
WARN_EVERY_S = 300.0  # a connection problem that persists is repeated this seldom
SEND_BATCH = 50


def topic_safe(name: str) -> str:
    """Lower case, letters, digits, - and _: safe in a topic and a Home Assistant id."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "device"


# Hostnames a fresh image gives every device alike: two Pis called
# `raspberrypi` would be one device, with one set of entities.
DEFAULT_HOSTNAMES = frozenset({"raspberrypi", "localhost", "debian", "ubuntu", "pi", "dietpi"})
MACHINE_ID = Path("/etc/machine-id")
FER_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def default_device_id(hostname: str | None = None) -> str:
    """The hostname, with a short stable suffix from /etc/machine-id when the
    hostname is one every fresh image has (raspberrypi-3fa2c1)."""
    hostname = hostname or socket.gethostname()
    if hostname.split(".")[0].lower() not in DEFAULT_HOSTNAMES:
        return hostname
    try:
        suffix = MACHINE_ID.read_text().strip()[:6]
    except OSError:
        suffix = ""
    return f"{hostname}-{suffix}" if suffix else hostname


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Topics:
    def __init__(self, prefix: str, device: str, discovery_prefix: str) -> None:
        base = f"{prefix.strip('/')}/{device}"
        self.availability = f"{base}/availability"
        self.state = f"{base}/state"
        self.events = f"{base}/events"
        self.pause_set = f"{base}/pause/set"  # ON / OFF: pause or resume analysis
        self.discovery_prefix = discovery_prefix.strip("/")
        self.device = device

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.device}/{object_id}/config"

    @property
    def birth(self) -> str:
        """Home Assistant says `online` here when it (re)starts."""
        return f"{self.discovery_prefix}/status"


SUPPORT_URL = "https://github.com/emotion-edge/emotion-edge"


def discovery_configs(
    topics: Topics, labels: list[str], model: str, web_url: str = ""
) -> dict[str, dict]:
    """Home Assistant MQTT discovery: topic -> retained config, one device with
    the entities docs/mqtt.md lists: the emotion (an enum sensor whose
    attributes are the whole state), the face count and one count per label,
    "someone is there", an event entity for arrivals, changes and departures,
    the pause switch, and FPS and p95 latency as diagnostics."""
    device = {
        "identifiers": [f"emotion-edge-{topics.device}"],
        "name": f"emotion-edge {topics.device}",
        "model": f"emotion-edge ({model})",
        "manufacturer": "emotion-edge",
        "sw_version": __version__,
    }
    if web_url:  # "Visit" in Home Assistant's device page; never the token
        device["configuration_url"] = web_url
    origin = {"name": "emotion-edge", "sw_version": __version__, "support_url": SUPPORT_URL}
    common = {"availability_topic": topics.availability, "device": device, "origin": origin}
    uid = f"emotion-edge-{topics.device}"

    def from_state(component: str, object_id: str, name: str, template: str, **extra) -> tuple:
        """An entity whose value is read from the retained state."""
        config = {
            **common,
            "name": name,
            "unique_id": f"{uid}-{object_id.replace('_', '-')}",
            "state_topic": topics.state,
            "value_template": template,
            **extra,
        }
        return topics.discovery(component, object_id), config

    measured = {"state_class": "measurement"}
    diagnostic = {**measured, "entity_category": "diagnostic"}
    entities = [
        from_state(
            "sensor", "emotion", "Emotion", "{{ value_json.emotion }}",
            device_class="enum", options=[*labels, "none"],
            # every state field as an attribute: per-label counts and shares, fps, latency
            json_attributes_topic=topics.state, icon="mdi:emoticon-outline",
        ),
        from_state(
            "sensor", "faces", "Faces", "{{ value_json.faces }}",
            **measured, icon="mdi:account-group",
        ),
        *(
            from_state(
                "sensor", f"faces_{topic_safe(label)}", f"Faces {label}",
                f"{{{{ value_json.labels.get('{label}', 0) }}}}",
                **measured, icon="mdi:account-multiple",
            )
            for label in labels
        ),
        from_state(
            "binary_sensor", "face_present", "Face present",
            "{{ 'ON' if value_json.faces > 0 else 'OFF' }}", device_class="occupancy",
        ),
        from_state(
            "switch", "pause", "Pause analysis", "{{ 'ON' if value_json.paused else 'OFF' }}",
            command_topic=topics.pause_set, icon="mdi:pause-circle-outline",
        ),
        from_state(
            "sensor", "fps", "Frame rate", "{{ value_json.fps }}",
            **diagnostic, unit_of_measurement="fps", icon="mdi:speedometer",
        ),
        from_state(
            "sensor", "latency_p95", "Latency p95", "{{ value_json.latency_ms_p95 }}",
            **diagnostic, unit_of_measurement="ms", device_class="duration",
        ),
    ]  # fmt: skip
    configs = dict(entities)
    configs[topics.discovery("event", "emotion_change")] = {
        **common,
        "name": "Emotion change",
        "unique_id": f"{uid}-emotion-change",
        "state_topic": topics.events,
        # appeared and changed carry the emotion; left says so. The event's
        # other fields become its attributes.
        "value_template": (
            "{{ dict(value_json, event_type=('left' if value_json.type == 'left' "
            "else value_json.label)) | tojson }}"
        ),
        "event_types": [*labels, "left"],
        "qos": 1,
    }
    return configs


def face_fields(face: Face) -> dict:
    return {
        "track": face.track,
        "label": face.label,
        "confidence": round(face.confidence, 4),
        "box": list(face.box),
        "probs": {k: round(v, 4) for k, v in face.probs.items()},
    }


class MqttSink(Sink):
    name = "mqtt"

    def __init__(
        self,
        config: MqttConfig,
        run: str = "",
        labels: list[str] | None = None,
        model: str = "",
        stats=None,
        pause: PauseSwitch | None = None,
        web_url: str = "",
    ) -> None:
        super().__init__()
        self.config = config
        self.web_url = web_url  # the device's configuration_url in Home Assistant
        self.pause = pause  # `<prefix>/<device>/pause/set` ON/OFF pauses analysis
        self.broker = parse_url(config.url)
        self.run = run or uuid.uuid4().hex[:12]
        self.labels = labels or []
        self.model = model
        self.stats = stats or dict
        device = topic_safe(config.device_id or default_device_id())
        self.topics = Topics(config.topic_prefix, device, config.discovery_prefix)
        self.track_events = TrackEvents(hold_s=config.hold_s)
        self.seq = 0
        self.published = 0
        self.expired = 0  # events dropped unsent for being older than max_age_s
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._client = None
        self._sender: threading.Thread | None = None
        self._spool: Spool | None = None
        self._last_state: dict | None = None
        self._state_key: tuple | None = None
        self._state_at = 0.0
        self._warned: dict[str, float] = {}

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        config = context.config.mqtt
        if not config.url:
            return None
        from edge.classifier import read_metadata

        model = context.config.classifier.model_paths[0]
        try:
            labels = list(read_metadata(model.with_suffix(".json"))["labels"])
        except Exception:
            labels = list(FER_LABELS)  # Home Assistant rejects event types it was not told
        web_url = page_url(context.config.web.listen)
        name = context.config.classifier.model_name
        return cls(config, context.run, labels, name, context.stats, context.pause, web_url)

    @property
    def description(self) -> str:
        return f"MQTT to {self.broker.host}:{self.broker.port}"

    # -- opening and closing -------------------------------------------------------

    def _open(self) -> None:
        import paho.mqtt.client as mqtt

        cfg = self.config
        try:
            self._spool = Spool(cfg.spool, int(cfg.buffer_mb * 1024 * 1024))
        except Exception as exc:
            raise SinkError(f"MQTT spool {cfg.spool}: {exc}: choose a writable path") from None
        # One fixed id per device (as Frigate does): a restarted device takes
        # over its old session, so the old connection's last will cannot land
        # after the new run's `online` and leave it showing offline.
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"emotion-edge-{self.topics.device}",
        )
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, os.environ.get(PASSWORD_ENV) or None)
        if self.broker.tls:
            for name in ("ca_file", "cert_file", "key_file"):
                path = getattr(cfg, name)
                if path and not Path(path).is_file():
                    raise SinkError(f"mqtt.{name} {path} not found: give the PEM file's path")
            try:
                client.tls_set(
                    ca_certs=cfg.ca_file or None,
                    certfile=cfg.cert_file or None,
                    keyfile=cfg.key_file or None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise SinkError(f"MQTT TLS files cannot be used: {exc}") from None
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(1000)
        client.max_inflight_messages_set(SEND_BATCH)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.broker.host, self.broker.port, keepalive=cfg.keepalive)
        client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()
        log.info(
            "MQTT: device %s to %s:%d%s; %d events waiting from before",
            self.topics.device,
            self.broker.host,
            self.broker.port,
            " (TLS)" if self.broker.tls else "",
            len(self._spool),
        )

    def _close(self) -> None:
        for event in self.track_events.close(time.monotonic()):
            self._queue_event(event)
        if self._last_state is not None:  # no one is in view of a stopped device
            self._last_state = {
                **self._last_state,
                "t": now_iso(),
                "faces": 0,
                "emotion": "none",
                "labels": {},
                "shares": {},
                "fps": 0.0,
            }
        self._publish_state()
        deadline = time.monotonic() + FLUSH_S
        while self.connected.is_set() and len(self._spool) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(FLUSH_S)
        client = self._client
        if self.connected.is_set():
            info = client.publish(self.topics.availability, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(1.0)
        client.disconnect()
        client.loop_stop()
        left = len(self._spool)
        self._spool.close()
        if left:
            log.info("MQTT: %d events stay queued in %s for the next run", left, self.config.spool)

    # -- the pipeline's side: fast, never waits on the network ------------------

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        # The scene's time: a file processed offline holds a face for 1 s of
        # its own video, however fast this machine gets through it.
        for event in self.track_events.update(result.faces, result.frame.t_scene):
            self._queue_event(event)
        self._update_state(result)

    def _queue_event(self, event: TrackEvent) -> None:
        self.seq += 1
        payload = {"run": self.run, "seq": self.seq, "t": now_iso(), "type": event.type}
        payload.update(face_fields(event.face))
        if event.label is not None:  # what was announced: `left` repeats it
            payload["label"] = event.label
        if event.previous is not None:
            payload["previous"] = event.previous
        if event.duration_s is not None:
            payload["duration_s"] = event.duration_s
        dropped = self._spool.put(self.topics.events, json.dumps(payload).encode())
        if dropped:
            self._warn(
                "full",
                f"MQTT buffer full ({self.config.buffer_mb:g} MB): dropped the oldest events "
                f"({self._spool.dropped} so far); raise [mqtt] buffer_mb or fix the broker",
            )
        self._wake.set()

    def _update_state(self, result: Result) -> None:
        counts: dict[str, int] = {}
        for face in result.faces:
            counts[face.label] = counts.get(face.label, 0) + 1
        emotion = max(counts, key=counts.get) if counts else "none"
        key = (len(result.faces), emotion, tuple(sorted(counts.items())))
        now = time.monotonic()
        due = now - self._state_at >= self.config.state_interval
        changed = key != self._state_key and now - self._state_at >= STATE_DEBOUNCE_S
        if not (due or changed):
            return
        snap = self.stats() or {}
        self._last_state = {
            "t": now_iso(),
            "faces": len(result.faces),
            "emotion": emotion,
            "labels": counts,
            "shares": {label: round(n / len(result.faces), 3) for label, n in counts.items()},
            "fps": round(float(snap.get("processed_fps", 0.0)), 2),
            "latency_ms_p95": round(float(snap.get("latency_ms", {}).get("p95", 0.0)), 2),
            "paused": self.pause is not None and self.pause.paused,
            "run": self.run,
        }
        self._state_key, self._state_at = key, now
        self._publish_state()

    def _publish_state(self) -> None:
        if self._last_state is None or not self.connected.is_set():
            return
        self._client.publish(self.topics.state, json.dumps(self._last_state), qos=1, retain=True)

    # -- the network's side ---------------------------------------------------------

    def _send_loop(self) -> None:
        """Deliver spooled events in order, each acknowledged before it is forgotten.

        A message handed to paho is never handed to it again while it is
        pending: paho itself sends it again after a reconnect (with the DUP
        flag), so a stalled broker costs at most the window in flight one
        extra copy each. It leaves the spool when acknowledged; only a
        restart of the program sends what was still unacknowledged again.
        """
        import paho.mqtt.client as mqtt

        pending: dict[int, object] = {}  # spool id -> paho's MessageInfo, in order
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while self.connected.is_set() and not self._stop.is_set():
                batch = self._spool.peek(SEND_BATCH)
                if not batch:
                    break
                stale = self._too_old(batch, pending)
                if stale:
                    self._spool.remove(stale)
                    continue
                for message_id, topic, data in batch:
                    if message_id in pending:
                        continue
                    info = self._client.publish(topic, data, qos=1)
                    if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                        break  # paho did not take it: try again later
                    pending[message_id] = info
                first = next(iter(pending.values()), None)
                if first is not None:
                    with contextlib.suppress(RuntimeError, ValueError):
                        first.wait_for_publish(1.0)
                done = [mid for mid, info in pending.items() if info.is_published()]
                for message_id in done:
                    del pending[message_id]
                self._spool.remove(done)
                self.published += len(done)
                if not done:
                    break  # nothing acknowledged for a second: look again later

    def _too_old(self, batch: list[tuple[int, str, bytes]], pending: dict) -> list[int]:
        """The ids of events in `batch`, not yet handed to paho, older than
        `[mqtt] max_age_s`: an arrival hours ago must not fire an automation
        now. Dropped, counted, said in one line per drain."""
        if not self.config.max_age_s:
            return []
        oldest = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.config.max_age_s)
        stale = []
        for message_id, _topic, data in batch:
            if message_id in pending:
                continue
            try:
                made = dt.datetime.fromisoformat(json.loads(data)["t"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours to judge: send it
            if made < oldest:
                stale.append(message_id)
        if stale:
            self.expired += len(stale)
            log.warning(
                "MQTT: dropped %d events older than max_age_s %g s (%d so far)",
                len(stale),
                self.config.max_age_s,
                self.expired,
            )
        return stale

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._warn(
                "connect",
                f"MQTT broker {self.broker.host}:{self.broker.port} refused the connection "
                f"({reason_code}): check [mqtt] username and {PASSWORD_ENV}; retrying",
            )
            return
        for key in ("connect", "down", "unreachable"):
            self._warned.pop(key, None)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        client.subscribe(self.topics.birth, qos=1)
        client.subscribe(self.topics.availability, qos=1)  # our own, to correct a stale will
        client.subscribe(self.topics.state, qos=1)  # another run under our id says so here
        if self.pause is not None:  # only this device's own topic: protect it with broker ACLs
            client.subscribe(self.topics.pause_set, qos=1)
        self._announce()
        self.connected.set()
        log.info("MQTT: connected to %s:%d", self.broker.host, self.broker.port)
        self._publish_state()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self._warn(
            "unreachable",
            f"MQTT broker {self.broker.host}:{self.broker.port} cannot be reached"
            + (
                " or its certificate is not trusted (check [mqtt] ca_file)"
                if self.broker.tls
                else ""
            )
            + "; events wait on disk, retrying",
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stop.is_set():
            self._warn(
                "down",
                f"MQTT broker {self.broker.host}:{self.broker.port} went away ({reason_code}); "
                "events wait on disk, reconnecting",
            )

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.birth and message.payload == b"online":
            self._announce()  # Home Assistant restarted: tell it again who we are
        elif message.topic == self.topics.availability and message.payload == b"offline":
            if self.connected.is_set() and not self._stop.is_set():
                # an old connection's last will, landed after our `online`: we are here
                client.publish(self.topics.availability, "online", qos=1, retain=True)
        elif message.topic == self.topics.state and not message.retain:
            with contextlib.suppress(ValueError, AttributeError):
                other = json.loads(message.payload).get("run")
                if other and other != self.run:
                    self._warn(
                        "twin",
                        f"another emotion-edge (run {other}) publishes as device "
                        f"{self.topics.device}: give each device its own [mqtt] device_id",
                    )
        elif message.topic == self.topics.pause_set and self.pause is not None:
            command = message.payload.strip().upper()
            if command in (b"ON", b"OFF"):
                self.pause.set(command == b"ON", "MQTT")
                self._state_at = 0.0  # say so at the next frame

    def _announce(self) -> None:
        configs = discovery_configs(self.topics, self.labels, self.model, self.web_url)
        for topic, config in configs.items():
            # With discovery off, an empty retained config removes what was announced.
            payload = json.dumps(config) if self.config.discovery else ""
            self._client.publish(topic, payload, qos=1, retain=True)

    def _warn(self, key: str, message: str) -> None:
        """Log a lasting problem once, and again only every WARN_EVERY_S."""
        now = time.monotonic()
        if now - self._warned.get(key, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[key] = now
            log.warning("%s", message)
