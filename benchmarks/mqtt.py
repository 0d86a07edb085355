"""`python -m benchmarks --mqtt`: what sending to a broker costs, and what it delivers.

Against a real mosquitto on loopback (Debian's `mosquitto`), in one run:

- the pipeline on the demo clip with MQTT off and on, side by side, as fast
  as it goes and paced like a camera: FPS and CPU;
- how many events a second the sink delivers, each acknowledged (QoS 1),
  draining a spool of queued events;
- a 10 s broker outage (stopped, restarted) and a 25 s stall (frozen with
  SIGSTOP, longer than the 5 s keepalive: a half-open link, as when Wi-Fi
  drops) in paced runs: events made, delivered, missing, duplicated (and the
  most copies of one), and whether the first copies came in order. The
  promise: none missing, none more than twice, first copies in order.

Writes `mqtt.json` and `mqtt.md` into the results folder.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.mosquitto import Mosquitto, available, free_tcp_port

log = logging.getLogger("benchmarks.mqtt")
DRAIN_EVENTS = 3000
OUTAGE_S = 10.0
STALL_S = 25.0
STALL_KEEPALIVE_S = 5


def _config(clip: str, mqtt: dict | None, realtime: bool, duration: float = 0.0, loop=False):
    from edge.config import RunConfig

    return RunConfig.model_validate(
        {
            "source": {"name": clip, "realtime": realtime, "loop": loop},
            "output": {"display": "none", "stats_interval": 3600},
            "mqtt": mqtt or {},
            "run": {"duration": duration} if duration else {},
        }
    )


def pipeline_cost(clip: str, mqtt: dict | None, realtime: bool) -> dict:
    """FPS and CPU % of one run (in a child process: its CPU is its own)."""
    import resource

    from edge.engine import Pipeline

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    summary = Pipeline(_config(clip, mqtt, realtime)).run()
    wall = time.perf_counter() - wall0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = sum(getattr(usage1, f) - getattr(usage0, f) for f in ("ru_utime", "ru_stime"))
    return {
        "fps": summary["processed_fps"],
        "frames": summary["frames_processed"],
        "cpu_percent": round(100 * cpu / wall, 1),
    }


def drain_rate(url: str, folder: Path) -> dict:
    """Events per second delivered with QoS 1 from a full spool."""
    from edge.config import MqttConfig
    from edge.sinks.mqtt import MqttSink
    from edge.sinks.spool import Spool

    spool_path = folder / "drain.sqlite"
    spool = Spool(spool_path, 64 << 20)
    event = {"run": "bench", "seq": 1, "t": "2026-01-01T00:00:00+00:00", "type": "appeared"}
    event.update(track=1, label="happy", confidence=0.9, box=[1, 2, 3, 4], probs={"happy": 0.9})
    payload = json.dumps(event).encode()
    for _ in range(DRAIN_EVENTS):
        spool.put("emotion-edge/bench/events", payload)
    spool.close()
    sink = MqttSink(MqttConfig(url=url, device_id="bench", spool=str(spool_path), discovery=False))
    start = time.perf_counter()
    with sink:
        while sink.published < DRAIN_EVENTS and time.perf_counter() - start < 120:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
    rate = round(sink.published / elapsed, 1)
    return {"events": sink.published, "seconds": round(elapsed, 2), "events_per_s": rate}


def disruption(
    clip: str, broker: Mosquitto, folder: Path, kind: str, duration: float = 30.0
) -> dict:
    """A paced run with the broker stopped (`outage`, OUTAGE_S) or frozen
    (`stall`, STALL_S) in the middle; every copy a subscriber receives counted."""
    import os
    import signal

    import paho.mqtt.client as mqtt

    from edge.engine import Pipeline

    received: list[dict] = []
    listener = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-listener-{kind}", clean_session=False
    )
    topic = f"emotion-edge/{kind}/events"
    listener.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    listener.on_message = lambda c, u, m: received.append(json.loads(m.payload))
    listener.reconnect_delay_set(1, 1)
    listener.connect("127.0.0.1", broker.port, keepalive=60)
    listener.loop_start()
    mqtt_config = {
        "url": broker.url,
        "device_id": kind,
        "spool": str(folder / f"{kind}.sqlite"),
        "keepalive": STALL_KEEPALIVE_S,
    }
    if kind == "stall":
        duration = max(duration, STALL_S + 20)
    pipeline = Pipeline(_config(clip, mqtt_config, True, duration, loop=True))
    sinks: list = []
    pipeline.on_result = lambda result: sinks or sinks.append(pipeline.find_sink("mqtt"))

    def disrupt() -> None:
        time.sleep(duration / 3 if kind == "outage" else 5)
        if kind == "outage":
            broker.stop()
            time.sleep(OUTAGE_S)
            broker.start()
        else:
            os.kill(broker.process.pid, signal.SIGSTOP)
            time.sleep(STALL_S)
            os.kill(broker.process.pid, signal.SIGCONT)

    thread = threading.Thread(target=disrupt, daemon=True)
    thread.start()
    summary = pipeline.run()
    thread.join()
    made = sinks[0].seq
    deadline = time.monotonic() + 30
    while len({e["seq"] for e in received}) < made and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # late copies still count
    listener.loop_stop()
    listener.disconnect()
    seqs = [e["seq"] for e in received]
    firsts = list(dict.fromkeys(seqs))  # each event's first copy, in arrival order
    copies = {seq: seqs.count(seq) for seq in firsts}
    return {
        "kind": kind,
        "duration_s": duration,
        "disrupted_s": OUTAGE_S if kind == "outage" else STALL_S,
        "keepalive_s": STALL_KEEPALIVE_S,
        "events_made": made,
        "messages_received": len(seqs),
        "events_delivered": len(firsts),
        "missing": made - len(set(seqs) & set(range(1, made + 1))),
        "duplicates": len(seqs) - len(firsts),
        "most_copies": max(copies.values(), default=0),
        "first_copies_in_order": firsts == sorted(firsts),
        "frames_processed": summary["frames_processed"],
    }


def run(clip: str, in_child) -> dict:
    if not available():
        raise SystemExit("--mqtt needs Debian's mosquitto: sudo apt install mosquitto")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "broker", free_tcp_port()).start()
        try:
            costs = {}
            for realtime in (False, True):
                mode = "realtime" if realtime else "offline"
                for on in (False, True):
                    name = f"{mode}, mqtt {'on' if on else 'off'}"
                    spool = str(folder / f"{mode}-{on}.sqlite")
                    settings = {"url": broker.url, "device_id": "bench", "spool": spool}
                    costs[name] = in_child(pipeline_cost, clip, settings if on else None, realtime)
                    log.info("mqtt: %s: %s", name, costs[name])
            drain = drain_rate(broker.url, folder)
            log.info("mqtt: drain %s", drain)
            cuts = {}
            for kind in ("outage", "stall"):
                cuts[kind] = disruption(clip, broker, folder, kind)
                log.info("mqtt: %s %s", kind, cuts[kind])
        finally:
            broker.stop()
    return {"pipeline": costs, "drain": drain, **cuts}


def table(result: dict) -> str:
    lines = ["| run | FPS | CPU % |", "|---|---:|---:|"]
    for name, row in result["pipeline"].items():
        lines.append(f"| {name} | {row['fps']:.1f} | {row['cpu_percent']:.0f} |")
    drain = result["drain"]
    lines += [
        "",
        f"Delivered from the spool, each acknowledged (QoS 1): {drain['events_per_s']:.0f} "
        f"events/s ({drain['events']} in {drain['seconds']} s).",
        "",
        "| broker | made | delivered | missing | duplicates | most copies | first in order |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind, what in (("outage", "stopped"), ("stall", "frozen (SIGSTOP)")):
        if kind not in result:  # results from before the stall was measured
            continue
        cut = result[kind]
        lines.append(
            f"| {what} {cut['disrupted_s']:g} s in a {cut['duration_s']:g} s paced run "
            f"| {cut['events_made']} | {cut['events_delivered']} | {cut['missing']} "
            f"| {cut['duplicates']} | {cut['most_copies']} "
            f"| {'yes' if cut['first_copies_in_order'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"
