"""Events to a real MQTT broker (Debian's mosquitto, started by the tests):
the topics and payloads against docs/mqtt.schema.json, Home Assistant
discovery, nothing lost across a broker outage, the last will, a refused
password; and the parts that need no broker: track events, the spool."""

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from conftest import ROOT, assert_one_line_error, run_cli

from benchmarks.mosquitto import free_tcp_port
from edge.config import RunConfig
from edge.engine import Pipeline
from edge.frames import Face
from edge.sinks.mqtt import FER_LABELS, SEND_BATCH
from edge.sinks.spool import Spool
from edge.track_events import TrackEvents

SCHEMA = json.loads((ROOT / "docs" / "mqtt.schema.json").read_text())
DEVICE = "test-pi"


def validate(kind: str, payload: dict) -> None:
    jsonschema.validate(payload, {**SCHEMA, "$ref": f"#/$defs/{kind}"})


class Subscriber:
    """Everything published under '#', with a persistent session (QoS 1), so
    what is sent while it is disconnected still reaches it."""

    def __init__(self, broker, client_id: str = "test-subscriber"):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        self.wait_for(lambda: self.client.is_connected())

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def events(self) -> list[dict]:
        return [json.loads(p) for p in self.on(f"emotion-edge/{DEVICE}/events")]

    def wait_for(self, condition, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def mqtt_config(broker, tmp_path, **mqtt_settings) -> dict:
    return {
        "url": broker.url,
        "device_id": DEVICE,
        "spool": str(tmp_path / "spool.sqlite"),
        "hold_s": 0.2,
        "state_interval": 1.0,
        **mqtt_settings,
    }


def pipeline_config(broker, tmp_path, run=None, source=None, **mqtt_settings) -> RunConfig:
    return RunConfig.model_validate(
        {
            "source": source or {"name": "demo"},
            "output": {"display": "none", "stats_interval": 3600},
            "mqtt": mqtt_config(broker, tmp_path, **mqtt_settings),
            "run": run or {},
        }
    )


# -- without a broker ---------------------------------------------------------


def face(track: int, label: str) -> Face:
    return Face((10, 10, 50, 50), 0.9, label, 0.8, {label: 0.8}, track)


def test_track_events_need_a_change_to_hold_and_a_face_to_stay_gone():
    events = TrackEvents(hold_s=1.0, gone_s=1.0)
    assert events.update([face(1, "happy")], 0.0) == []  # not yet a person: it must last
    assert [e.type for e in events.update([face(1, "happy")], 1.0)] == ["appeared"]
    assert events.update([face(1, "sad")], 1.5) == []  # not held yet
    assert events.update([face(1, "happy")], 1.7) == []  # a flicker, back again
    assert events.update([face(1, "sad")], 2.0) == []
    changed = events.update([face(1, "sad")], 3.1)
    assert [(e.type, e.face.label) for e in changed] == [("changed", "sad")]
    assert events.update([], 3.5) == []  # one missed frame is not leaving
    left = events.update([], 4.2)
    assert [(e.type, e.duration_s) for e in left] == [("left", 3.1)]


def test_a_phantom_of_a_frame_or_two_never_appears_nor_leaves():
    events = TrackEvents(hold_s=1.0, gone_s=1.0)
    seen = events.update([face(7, "fear")], 0.0) + events.update([face(7, "fear")], 0.1)
    seen += events.update([], 1.5) + events.update([], 3.0) + events.close(3.0)
    assert seen == []
    instant = TrackEvents(hold_s=0.0)  # hold_s = 0: every track announced at once
    assert [e.type for e in instant.update([face(1, "happy")], 0.0)] == ["appeared"]


def test_spool_keeps_order_across_reopening_and_drops_the_oldest_when_full(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=100)
    for i in range(5):
        assert spool.put("t", f"message-{i:02d}".encode()) == 0  # 10 bytes each
    spool.close()
    spool = Spool(tmp_path / "s.sqlite", max_bytes=100)  # a restart keeps them
    assert [p for _, _, p in spool.peek()] == [f"message-{i:02d}".encode() for i in range(5)]
    for i in range(5, 12):
        spool.put("t", f"message-{i:02d}".encode())
    kept = [p.decode() for _, _, p in spool.peek()]
    assert kept == [f"message-{i:02d}" for i in range(2, 12)] and spool.dropped == 2
    spool.remove([row[0] for row in spool.peek(3)])
    assert len(spool) == 7


def test_a_bad_broker_address_is_one_line_and_exit_2():
    assert_one_line_error(
        run_cli("run", "--source", "demo", "--display", "none", "--mqtt", "http://broker"),
        "is not a broker address",
        "mqtt://host",
    )


def render(config: dict, payload: dict) -> str:
    """A discovery config's value_template on a payload, rendered as Home
    Assistant renders it: Jinja2 with the payload as `value_json`."""
    import jinja2

    template = jinja2.Environment().from_string(config["value_template"])
    return template.render(value_json=payload, value=json.dumps(payload))


# -- with a real broker -------------------------------------------------------


def test_events_state_and_discovery_follow_the_contract(mosquitto, tmp_path):
    subscriber = Subscriber(mosquitto)
    try:
        Pipeline(pipeline_config(mosquitto, tmp_path)).run()
        base = f"emotion-edge/{DEVICE}"
        subscriber.wait_for(lambda: subscriber.on(f"{base}/availability")[-1:] == [b"offline"])
        events = subscriber.events()
        assert events, "no events"
        for event in events:
            validate("event", event)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        types = [e["type"] for e in events]
        assert types.count("appeared") == types.count("left") > 0  # everyone leaves at the end
        states = [json.loads(p) for p in subscriber.on(f"{base}/state")]
        assert states
        for state in states:
            validate("state", state)
        assert any(s["faces"] > 0 for s in states)
        assert subscriber.on(f"{base}/availability")[0] == b"online"
        configs = {
            t: json.loads(p) for t, p, _ in subscriber.messages if t.startswith("homeassistant/")
        }
        components = {t.split("/")[1] for t in configs}
        assert components == {"sensor", "binary_sensor", "event", "switch"}
        assert len(configs) == 7 + len(FER_LABELS)  # one face-count sensor per label
        for config in configs.values():
            assert config["unique_id"].startswith(f"emotion-edge-{DEVICE}")
            assert config["availability_topic"] == f"{base}/availability"
            assert config["state_topic"] in (f"{base}/state", f"{base}/events")
            assert config["device"]["identifiers"] == [f"emotion-edge-{DEVICE}"]
            assert config["device"]["sw_version"]
            assert "configuration_url" not in config["device"]  # no web page here
            assert config["origin"]["name"] == "emotion-edge" and config["origin"]["sw_version"]
        assert len({c["unique_id"] for c in configs.values()}) == len(configs)
        # Home Assistant's side: each template rendered (Jinja2, as HA does) on what was sent
        by_object = {t.split("/")[3]: c for t, c in configs.items()}
        emotion = by_object["emotion"]
        assert emotion["device_class"] == "enum" and emotion["options"] == [*FER_LABELS, "none"]
        assert emotion["json_attributes_topic"] == f"{base}/state"
        for state in states:
            assert render(emotion, state) in emotion["options"]
            per_label = sum(int(render(by_object[f"faces_{label}"], state)) for label in FER_LABELS)
            assert per_label == int(render(by_object["faces"], state)) == state["faces"]
            assert float(render(by_object["fps"], state)) == state["fps"]
            assert float(render(by_object["latency_p95"], state)) == state["latency_ms_p95"]
        assert {by_object[o]["entity_category"] for o in ("fps", "latency_p95")} == {"diagnostic"}
        event_entity = by_object["emotion_change"]
        assert event_entity["qos"] == 1
        for event in events:
            fired = json.loads(render(event_entity, event))
            assert fired["event_type"] in event_entity["event_types"]
            assert {k: fired[k] for k in ("type", "confidence", "seq", "run", "t")} == {
                k: event[k] for k in ("type", "confidence", "seq", "run", "t")
            }
            assert fired.get("previous") == event.get("previous")
    finally:
        subscriber.close()


def test_a_broker_outage_loses_no_event_and_slows_nothing(mosquitto, tmp_path, monkeypatch):
    from edge.sinks.mqtt import MqttSink

    # How long each frame's hand-over to the MQTT sink takes (its real code, timed).
    writes: list[tuple[float, float]] = []  # (when, seconds)
    real_write = MqttSink._write

    def timed_write(self, result, annotated):
        start = time.monotonic()
        try:
            return real_write(self, result, annotated)
        finally:
            writes.append((start, time.monotonic() - start))

    monkeypatch.setattr(MqttSink, "_write", timed_write)
    subscriber = Subscriber(mosquitto)
    processed: list[float] = []  # when each result came out
    broker: dict[str, float] = {}
    stopping: list[threading.Thread] = []

    def stop() -> None:
        mosquitto.stop()
        broker["down"] = time.monotonic()

    def start() -> None:
        stopping[0].join()  # on a slow machine the stop may still be under way
        broker["up"] = time.monotonic()
        mosquitto.start()

    def outage(result):
        # The broker is stopped and started from threads of their own: the
        # pipeline's output thread must not wait on the test either.
        processed.append(time.monotonic())
        if len(processed) == 45:
            stopping.append(threading.Thread(target=stop))  # about 3 s in: down for about 5 s
            stopping[0].start()
        elif len(processed) == 120:
            threading.Thread(target=start).start()

    config = pipeline_config(
        mosquitto,
        tmp_path,
        source={"name": "demo", "loop": True, "realtime": True},
        run={"duration": 16},
    )
    try:
        summary = Pipeline(config, on_result=outage).run()
        subscriber.wait_for(
            lambda: subscriber.on(f"emotion-edge/{DEVICE}/availability")[-1:] == [b"offline"],
            timeout=30,
        )
        events = subscriber.events()
        # QoS 1 is at least once: an event in flight at the cut may come twice
        seqs = list(dict.fromkeys(e["seq"] for e in events))
        assert seqs == list(range(1, max(seqs) + 1)), "an event went missing or out of order"
        assert len({e["run"] for e in events}) == 1
        # events happened while the broker was down, and arrived
        assert len(events) >= 10
        # The pipeline did not wait on the broker: it processed frames as fast while
        # the broker was down as before (same run, same machine load: a ratio).
        first, down, up = processed[0], broker["down"], broker["up"]
        before = sum(first <= t < down for t in processed) / (down - first)
        during = sum(down <= t < up for t in processed) / (up - down)
        assert during >= 0.5 * before, (before, during)
        # ...and no frame's hand-over waited on it: the sink's writes while the
        # broker was down take as long as while it was up (medians, same run;
        # a wait of even a few milliseconds a frame would show here).
        write_before = statistics.median(d for t, d in writes if first <= t < down)
        write_during = statistics.median(d for t, d in writes if down <= t < up)
        assert write_during <= 3 * write_before + 0.002, (write_before, write_during)
        assert summary["frames_processed"] > 120
    finally:
        subscriber.close()


def device_process(broker, tmp_path):
    """A factory of devices run as their own process (`emotion-edge run` on
    the looped demo clip, keepalive 5 s), all under one device id."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[source]\nname = "demo"\nloop = true\nrealtime = true\n'
        '[output]\ndisplay = "none"\n'
        f'[mqtt]\nurl = "{broker.url}"\ndevice_id = "{DEVICE}"\nkeepalive = 5\n'
        f'spool = "{tmp_path / "spool.sqlite"}"\n'
    )

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return start


def test_the_last_will_says_offline_when_the_process_dies(mosquitto, tmp_path):
    subscriber = Subscriber(mosquitto)
    process = device_process(mosquitto, tmp_path)()
    try:
        topic = f"emotion-edge/{DEVICE}/availability"
        subscriber.wait_for(lambda: subscriber.on(topic)[-1:] == [b"online"], timeout=60)
        process.send_signal(signal.SIGKILL)  # a power cut, as the broker sees it
        process.wait(10)
        subscriber.wait_for(lambda: subscriber.on(topic)[-1:] == [b"offline"], timeout=20)
    finally:
        process.kill()
        subscriber.close()


def test_a_device_killed_and_restarted_within_2_s_ends_online(mosquitto, tmp_path):
    """A crash-restart under the same device id: the old connection's last will
    must not leave the device showing offline once the new run is up."""
    subscriber = Subscriber(mosquitto)
    start = device_process(mosquitto, tmp_path)
    topic = f"emotion-edge/{DEVICE}/availability"
    first = start()
    second = None
    try:
        subscriber.wait_for(lambda: subscriber.on(topic)[-1:] == [b"online"], timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed = time.monotonic()
        second = start()  # within 2 s: as systemd's Restart= does
        assert time.monotonic() - killed < 2
        runs = lambda: {  # noqa: E731
            json.loads(p)["run"] for p in subscriber.on(f"emotion-edge/{DEVICE}/state")
        }
        before = runs()
        subscriber.wait_for(lambda: runs() - before, timeout=60)  # the new run publishes
        time.sleep(5 * 1.5 + 3)  # past the old connection's keepalive: its will has come
        assert second.poll() is None
        assert subscriber.on(topic)[-1] == b"online", subscriber.on(topic)
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait(10)
        subscriber.close()


def test_home_assistant_restarting_gets_the_configs_again(mosquitto, tmp_path):
    subscriber = Subscriber(mosquitto)
    config = pipeline_config(
        mosquitto, tmp_path, source={"name": "demo", "loop": True}, run={"duration": 6}
    )
    pipeline = Pipeline(config)
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    try:
        topic = "homeassistant/sensor/test-pi/emotion/config"
        subscriber.wait_for(lambda: len(subscriber.on(topic)) == 1)
        subscriber.client.publish("homeassistant/status", "online", qos=1)
        subscriber.wait_for(lambda: len(subscriber.on(topic)) == 2)
    finally:
        pipeline.stop()
        thread.join(20)
        subscriber.close()


def test_discovery_off_removes_the_entities(mosquitto, tmp_path):
    subscriber = Subscriber(mosquitto)
    try:
        Pipeline(
            pipeline_config(mosquitto, tmp_path, discovery=False, run={"max_frames": 10})
        ).run()
        topic = "homeassistant/sensor/test-pi/emotion/config"
        subscriber.wait_for(lambda: subscriber.on(topic) == [b""])  # an empty retained config
    finally:
        subscriber.close()


@pytest.fixture
def guarded_mosquitto(tmp_path):
    import shutil

    from conftest import Mosquitto, free_tcp_port

    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto not installed")
    folder = tmp_path / "guarded"
    broker = Mosquitto(folder, free_tcp_port(), passwords={"pi": "right-password"}).start()
    yield broker
    broker.stop()


def test_a_refused_password_warns_once_and_the_pipeline_goes_on(
    guarded_mosquitto, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("EMOTION_EDGE_MQTT_PASSWORD", "wrong-password")
    config = pipeline_config(
        guarded_mosquitto, tmp_path, username="pi", run={"max_frames": 240}, hold_s=0.0
    )
    summary = Pipeline(config).run()
    assert summary["frames_processed"] == 240
    refused = [r for r in caplog.records if "refused the connection" in r.getMessage()]
    assert len(refused) == 1 and "EMOTION_EDGE_MQTT_PASSWORD" in refused[0].getMessage()
    assert len(Spool(tmp_path / "spool.sqlite", 1 << 20)) > 0  # kept for when it works


def test_monitor_shows_every_device_from_the_retained_messages(mosquitto):
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    for name, online, faces in (("hall", "online", 2), ("shop-1", "offline", 0)):
        state = {
            "t": "2026-11-28T08:00:00+00:00",
            "faces": faces,
            "emotion": "happy",
            "labels": {"happy": faces} if faces else {},
            "fps": 14.9,
            "latency_ms_p95": 30.0,
        }
        publisher.publish(f"emotion-edge/{name}/availability", online, qos=1, retain=True)
        publisher.publish(
            f"emotion-edge/{name}/state", json.dumps(state), qos=1, retain=True
        ).wait_for_publish(5)
    publisher.loop_stop()
    publisher.disconnect()
    proc = run_cli("monitor", mosquitto.url, "--once", "1.5")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line}
    assert rows["hall"][1:5] == ["yes", "2", "happy", "14.9"]
    assert rows["shop-1"][1:5] == ["NO", "-", "-", "-"]  # offline: no stale figures
    # "last seen" by the device's own clock: its state is days old, not "1 s ago"
    assert int(rows["hall"][5]) > 3600 and rows["hall"][6:] == ["s", "ago"]
    assert "2 device(s)" in proc.stdout
    bad = run_cli("monitor", "broker.local")
    assert_one_line_error(bad, "is not a broker address")
    assert_one_line_error(run_cli("monitor", mosquitto.url, "--once", "-1"), "--once -1")


def test_monitor_says_when_the_broker_is_unreachable_or_refuses(guarded_mosquitto):
    nowhere = run_cli("monitor", f"mqtt://127.0.0.1:{free_tcp_port()}", "--once", "1")
    assert nowhere.returncode == 1 and "Traceback" not in nowhere.stderr
    assert "cannot be reached" in nowhere.stderr and "device(s)" not in nowhere.stdout
    refused = run_cli(
        "monitor",
        guarded_mosquitto.url,
        "--username",
        "pi",
        "--once",
        "1",
        env={**os.environ, "EMOTION_EDGE_MQTT_PASSWORD": "wrong"},
    )
    assert refused.returncode == 1 and "refused the connection" in refused.stderr


def make_certificates(folder) -> tuple:
    """A throwaway CA and a broker certificate for localhost, signed by it (openssl)."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=emotion-edge test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
    )
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
        "-out",
        "broker.crt",
    )
    return folder / "ca.crt", folder / "broker.crt", folder / "broker.key"


def test_tls_with_the_brokers_ca_delivers_and_a_wrong_ca_is_refused(tmp_path, caplog):
    import shutil

    from conftest import Mosquitto, free_tcp_port

    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto not installed")
    ca, cert, key = make_certificates(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "tls-broker", free_tcp_port(), tls=(ca, cert, key)).start()
    try:
        listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        listener.tls_set(ca_certs=str(ca))
        got = []
        listener.on_connect = lambda c, *a: c.subscribe("emotion-edge/#", qos=1)
        listener.on_message = lambda c, u, m: got.append(m.topic)
        listener.connect("localhost", broker.port)
        listener.loop_start()
        # hold_s 0: played as fast as it goes, the clip's faces last under 0.2 s
        config = pipeline_config(
            broker, tmp_path, ca_file=str(ca), run={"max_frames": 120}, hold_s=0.0
        )
        Pipeline(config).run()
        deadline = time.monotonic() + 20
        while f"emotion-edge/{DEVICE}/events" not in got and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"emotion-edge/{DEVICE}/events" in got
        listener.loop_stop()
        # a CA that did not sign the broker's certificate: refused, said once, goes on
        other_ca, _, _ = make_certificates(tmp_path / "other-pki")
        config = pipeline_config(
            broker, tmp_path / "2", ca_file=str(other_ca), run={"max_frames": 60}, hold_s=0.0
        )
        assert Pipeline(config).run()["frames_processed"] == 60
        untrusted = [r for r in caplog.records if "certificate is not trusted" in r.getMessage()]
        assert len(untrusted) == 1
    finally:
        broker.stop()


def test_the_benchmark_drains_a_full_spool_through_a_real_broker(mosquitto, tmp_path):
    from benchmarks.mqtt import DRAIN_EVENTS, drain_rate

    result = drain_rate(mosquitto.url, tmp_path)
    assert result["events"] == DRAIN_EVENTS and result["events_per_s"] > 0


def test_the_pause_switch_stops_analysis_and_says_so_in_state(mosquitto, tmp_path):
    """Home Assistant's switch: ON on the device's own `pause/set` topic pauses
    analysis (state says so, no face is reported), OFF resumes it."""
    subscriber = Subscriber(mosquitto)
    configs: list[dict] = []
    results: list = []
    config = pipeline_config(
        mosquitto,
        tmp_path,
        source={"name": "demo", "loop": True, "realtime": True},
        run={"duration": 60},
    )
    pipeline = Pipeline(config, on_result=results.append)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        subscriber.wait_for(
            lambda: any(b"faces" in m for m in subscriber.on(f"emotion-edge/{DEVICE}/state"))
        )
        topic = f"homeassistant/switch/{DEVICE}/pause/config"
        subscriber.wait_for(lambda: subscriber.on(topic))
        configs.append(json.loads(subscriber.on(topic)[-1]))
        assert configs[0]["command_topic"] == f"emotion-edge/{DEVICE}/pause/set"
        subscriber.client.publish(configs[0]["command_topic"], "ON", qos=1)
        subscriber.wait_for(
            lambda: json.loads(subscriber.on(f"emotion-edge/{DEVICE}/state")[-1])["paused"]
        )
        paused_at = len(results)
        deadline = time.monotonic() + 30
        while len(results) < paused_at + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(results) >= paused_at + 20  # frames still flow: the watchdog is fed
        assert all(not r.faces for r in results[paused_at + 2 :])  # nothing analysed
        subscriber.client.publish(configs[0]["command_topic"], "OFF", qos=1)
        subscriber.wait_for(
            lambda: not json.loads(subscriber.on(f"emotion-edge/{DEVICE}/state")[-1])["paused"]
        )
    finally:
        pipeline.stop()
        runner.join(30)
        subscriber.close()


def test_a_stalled_broker_costs_at_most_one_copy_of_what_was_in_flight(mosquitto, tmp_path):
    """The broker frozen (SIGSTOP: a half-open link, as when Wi-Fi drops) for
    longer than the keepalive, then resumed: no event lost, none more than
    twice, the first copies in order."""
    subscriber = Subscriber(mosquitto)
    processed: list[float] = []

    def stall(result):
        processed.append(time.monotonic())
        if len(processed) == 45:  # 3 s in: frozen for 12 s, keepalive 5 s
            os.kill(mosquitto.process.pid, signal.SIGSTOP)
            threading.Timer(12, os.kill, (mosquitto.process.pid, signal.SIGCONT)).start()

    config = pipeline_config(
        mosquitto,
        tmp_path,
        source={"name": "demo", "loop": True, "realtime": True},
        run={"duration": 24},
        keepalive=5,
    )
    try:
        Pipeline(config, on_result=stall).run()
        subscriber.wait_for(
            lambda: subscriber.on(f"emotion-edge/{DEVICE}/availability")[-1:] == [b"offline"],
            timeout=60,
        )
        seqs = [e["seq"] for e in subscriber.events()]
        first_copies = list(dict.fromkeys(seqs))
        assert first_copies == list(range(1, max(seqs) + 1)), "lost or out of order"
        assert max(seqs.count(s) for s in set(seqs)) <= 2, "an event came three times or more"
        assert len(seqs) - len(first_copies) <= SEND_BATCH, "more copies than were in flight"
    finally:
        os.kill(mosquitto.process.pid, signal.SIGCONT)
        subscriber.close()


def test_topics_with_wildcards_or_empty_levels_are_one_line(tmp_path):
    config = tmp_path / "c.toml"
    for key, value in (
        ("topic_prefix", "a+b"),
        ("device_id", "kitchen/#"),
        ("topic_prefix", "a//b"),
    ):
        config.write_text(f'[mqtt]\n{key} = "{value}"\n')
        assert_one_line_error(run_cli("check-config", str(config)), f"mqtt.{key}", "MQTT topic")


def test_two_pis_called_raspberrypi_are_two_devices(tmp_path, monkeypatch):
    import edge.sinks.mqtt as sink

    ids = []
    for machine in ("3fa2c1d0e9b84a7c9d2e1f0a6b5c4d3e", "88aa01234567890abcdef0123456789a"):
        (tmp_path / "machine-id").write_text(machine + "\n")
        monkeypatch.setattr(sink, "MACHINE_ID", tmp_path / "machine-id")
        ids.append(sink.default_device_id("raspberrypi"))
    assert ids == ["raspberrypi-3fa2c1", "raspberrypi-88aa01"]
    assert sink.default_device_id("kitchen-pi") == "kitchen-pi"  # a chosen name stays
    monkeypatch.setattr(sink, "MACHINE_ID", tmp_path / "none")
    assert sink.default_device_id("raspberrypi") == "raspberrypi"  # no machine id: as before


def test_another_run_under_the_same_device_id_is_said_once(tmp_path, caplog):
    import types

    from edge.config import MqttConfig
    from edge.sinks.mqtt import MqttSink

    sink = MqttSink(
        MqttConfig(url="mqtt://127.0.0.1:1", device_id="hall", spool=str(tmp_path / "s.sqlite")),
        run="mine",
    )

    def message(run: str, retain: bool):
        payload = json.dumps({"run": run}).encode()
        return types.SimpleNamespace(topic=sink.topics.state, payload=payload, retain=retain)

    sink._on_message(None, None, message("an-old-run", retain=True))  # our last run's, kept
    sink._on_message(None, None, message("mine", retain=False))  # our own, echoed
    assert "another emotion-edge" not in caplog.text
    for _ in range(3):
        sink._on_message(None, None, message("theirs", retain=False))
    warnings = [r for r in caplog.records if "another emotion-edge (run theirs)" in r.getMessage()]
    assert len(warnings) == 1 and "device_id" in warnings[0].getMessage()


def test_a_stopped_device_leaves_an_empty_state_and_changes_say_what_was_before(
    mosquitto, tmp_path
):
    subscriber = Subscriber(mosquitto)
    config = pipeline_config(
        mosquitto, tmp_path, source={"name": "demo", "realtime": True}, run={"duration": 8}
    )
    try:
        Pipeline(config).run()
        topic = f"emotion-edge/{DEVICE}/availability"
        subscriber.wait_for(lambda: subscriber.on(topic)[-1:] == [b"offline"])
        last = json.loads(subscriber.on(f"emotion-edge/{DEVICE}/state")[-1])
        assert (last["faces"], last["emotion"], last["labels"]) == (0, "none", {})
        events = subscriber.events()
        for event in events:
            if event["type"] == "changed":
                assert event["previous"] != event["label"]
        announced = {e["track"]: e["label"] for e in events if e["type"] != "left"}
        for event in events:
            if event["type"] == "left":  # the label last announced, not the last frame's
                assert event["label"] == announced[event["track"]]
    finally:
        subscriber.close()


def test_home_assistant_links_to_the_web_page_only_where_the_network_reaches_it(monkeypatch):
    import socket

    from edge.sinks.mqtt import Topics, discovery_configs
    from edge.web.address import page_url

    monkeypatch.setattr(socket, "gethostname", lambda: "kitchen-pi")
    assert page_url("") == page_url("8080") == page_url("127.0.0.1:8080") == ""
    assert page_url("0.0.0.0:8080") == "http://kitchen-pi.local:8080/"
    assert page_url("192.168.1.20:8080") == "http://192.168.1.20:8080/"
    assert page_url("[fd00::2]:8080") == "http://[fd00::2]:8080/"
    topics = Topics("emotion-edge", "kitchen-pi", "homeassistant")
    url = page_url("0.0.0.0:8080")
    for config in discovery_configs(topics, list(FER_LABELS), "m.tflite", url).values():
        assert config["device"]["configuration_url"] == url  # never the token


def test_events_older_than_max_age_are_dropped_unsent_and_counted(mosquitto, tmp_path, caplog):
    """After a long outage an hour-old `appeared` must not fire an automation."""
    import datetime as dt

    from edge.config import MqttConfig
    from edge.sinks.mqtt import MqttSink

    spool_path = tmp_path / "spool.sqlite"
    spool = Spool(spool_path, 1 << 20)
    now = dt.datetime.now(dt.UTC)
    for seq, age_s in enumerate([3600, 3000, 5, 1], start=1):
        made = (now - dt.timedelta(seconds=age_s)).isoformat(timespec="milliseconds")
        event = {"run": "old", "seq": seq, "t": made, "type": "appeared"}
        spool.put(f"emotion-edge/{DEVICE}/events", json.dumps(event).encode())
    spool.close()
    subscriber = Subscriber(mosquitto)
    config = MqttConfig(
        url=mosquitto.url, device_id=DEVICE, spool=str(spool_path), discovery=False,
        max_age_s=600,
    )  # fmt: skip
    try:
        with MqttSink(config) as sink:
            deadline = time.monotonic() + 30
            while sink.published + sink.expired < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        subscriber.wait_for(lambda: len(subscriber.events()) == 2)
        assert [e["seq"] for e in subscriber.events()] == [3, 4]
        assert (sink.published, sink.expired) == (2, 2)
        lines = [r.getMessage() for r in caplog.records if "older than max_age_s" in r.getMessage()]
        assert lines == ["MQTT: dropped 2 events older than max_age_s 600 s (2 so far)"]
    finally:
        subscriber.close()
