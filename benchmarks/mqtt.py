"""`python -m benchmarks --mqtt`: what sending to a broker costs, and what it delivers.

Against a real mosquitto on loopback (Debian's `mosquitto`), in one run:

- the pipeline on the demo clip with MQTT off and on, side by side, as fast
  as it goes and paced like a camera: FPS and CPU;
- how many events a second the sink delivers, each acknowledged (QoS 1),
  draining a spool of queued events;
- a 10 s broker outage in a paced run: events made, and events delivered
  afterwards (all of them, in order, is the promise).

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


def outage(clip: str, broker: Mosquitto, folder: Path, duration: float = 30.0) -> dict:
    """A paced run with the broker down for OUTAGE_S in the middle."""
    import paho.mqtt.client as mqtt

    from edge.engine import Pipeline

    received: list[dict] = []
    listener = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="bench-listener", clean_session=False
    )
    listener.on_connect = lambda c, *a: c.subscribe("emotion-edge/outage/events", qos=1)
    listener.on_message = lambda c, u, m: received.append(json.loads(m.payload))
    listener.reconnect_delay_set(1, 1)
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    mqtt_config = {"url": broker.url, "device_id": "outage", "spool": str(folder / "o.sqlite")}
    pipeline = Pipeline(_config(clip, mqtt_config, True, duration, loop=True))
    sinks: list = []
    pipeline.on_result = lambda result: sinks or sinks.append(pipeline.find_sink("mqtt"))

    def cut() -> None:
        time.sleep(duration / 3)
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start()

    threading.Thread(target=cut, daemon=True).start()
    summary = pipeline.run()
    made = sinks[0].seq
    deadline = time.monotonic() + 30
    while len({e["seq"] for e in received}) < made and time.monotonic() < deadline:
        time.sleep(0.1)
    listener.loop_stop()
    seqs = sorted({e["seq"] for e in received})
    return {
        "duration_s": duration,
        "outage_s": OUTAGE_S,
        "events_made": made,
        "events_delivered": len(seqs),
        "in_order_without_gaps": seqs == list(range(1, made + 1)),
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
            cut = outage(clip, broker, folder)
            log.info("mqtt: outage %s", cut)
        finally:
            broker.stop()
    return {"pipeline": costs, "drain": drain, "outage": cut}


def table(result: dict) -> str:
    lines = ["| run | FPS | CPU % |", "|---|---:|---:|"]
    for name, row in result["pipeline"].items():
        lines.append(f"| {name} | {row['fps']:.1f} | {row['cpu_percent']:.0f} |")
    drain, cut = result["drain"], result["outage"]
    lines += [
        "",
        f"Delivered from the spool, each acknowledged (QoS 1): {drain['events_per_s']:.0f} "
        f"events/s ({drain['events']} in {drain['seconds']} s).",
        f"A {cut['outage_s']:g} s broker outage in a {cut['duration_s']:g} s paced run: "
        f"{cut['events_made']} events made, {cut['events_delivered']} delivered, "
        f"{'in order without gaps' if cut['in_order_without_gaps'] else 'WITH GAPS'}.",
    ]
    return "\n".join(lines) + "\n"
