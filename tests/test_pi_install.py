"""The README's commands in the Pi's own install: a venv made by
`edge/systemd/install.sh --venv-only` (the runtime dependencies and the tested
constraints, nothing from the dev extras), as `make test` builds it.

Every other test runs in the dev venv, which has matplotlib, pytest, mediapipe
and more: a runtime import the Pi lacks (`analyze` drawing its charts with
matplotlib, once a dev-only package) passed there and crashed on a Pi.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import pytest
from conftest import DEMO_CLIP, ROOT

# PI_VENV: the Trixie run (scripts/trixie-test.sh) points it at its own.
PI_VENV = Path(os.environ.get("PI_VENV", ROOT / ".venv-pi"))
PYTHON = PI_VENV / "bin" / "python"
EMOTION_EDGE = PI_VENV / "bin" / "emotion-edge"

if not PYTHON.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{PI_VENV} is missing: `make test` builds it (install.sh --venv-only)")
    pytest.skip(f"{PI_VENV} is missing: run `make test`", allow_module_level=True)


def run(*command: str | Path, timeout: float = 300, code: int = 0) -> subprocess.CompletedProcess:
    """A command in the Pi venv, with no trace of the dev venv in its
    environment; it must exit with `code`, and never in a traceback."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = f"{PI_VENV / 'bin'}:/usr/bin:/bin"
    proc = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def short_clip(path: Path, frames: int = 45) -> Path:
    """The demo clip's first `frames` frames (two faces from frame 0)."""
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        writer.write(image)
    writer.release()
    cap.release()
    return path


def test_the_venv_is_the_runtime_set_alone():
    """What the commands import comes from the venv itself (install.sh's
    --system-site-packages also shows the host's packages: a Pi's apt ones),
    and none of the dev extras was installed into it."""
    proc = run(PYTHON, "-c", "import importlib.util as u, json; "
               "print(json.dumps({n: u.find_spec(n).origin for n in "
               "('cv2', 'numpy', 'matplotlib', 'ai_edge_litert', 'paho', 'edge')}))")  # fmt: skip
    venv = str(PI_VENV.resolve())
    for name, origin in json.loads(proc.stdout).items():
        assert origin.startswith(venv) or name == "edge", (name, origin)
    own = {
        path.name.split("-")[0].lower().replace("_", "-")
        for path in PI_VENV.glob("lib/python3*/site-packages/*.dist-info")
    }
    assert "matplotlib" in own and "opencv-contrib-python" in own
    assert not own & {"pytest", "mediapipe", "tensorflow", "selenium", "ruff", "jsonschema"}


def test_info_and_run_never_load_the_report_charts(tmp_path):
    run(EMOTION_EDGE, "info")
    events = tmp_path / "events.jsonl"
    # -X importtime: every module the run imports, on stderr.
    proc = run(PYTHON, "-X", "importtime", "-m", "edge", "run", "--source", "demo",
               "--display", "none", "--max-frames", "20", "--events", events,
               "--record", tmp_path / "annotated.mp4")  # fmt: skip
    frames = [json.loads(line) for line in events.read_text().splitlines()]
    assert sum(1 for event in frames if event.get("type") == "frame") == 20
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "edge.engine" in imported  # importtime did list the run's modules
    assert not {name for name in imported if name.split(".")[0] == "matplotlib"}
    assert (tmp_path / "annotated.mp4").stat().st_size > 0


def test_the_pipeline_entry_point(tmp_path):
    events = tmp_path / "events.jsonl"
    run(PYTHON, "edge/pipeline.py", "--source", "demo", "--display", "none",
        "--max-frames", "10", "--events", events)  # fmt: skip
    assert events.read_text().count('"type":"frame"') == 10


def test_analyze_writes_its_whole_report(tmp_path):
    clip = short_clip(tmp_path / "session.mp4")
    run(EMOTION_EDGE, "analyze", clip, "--out", tmp_path / "report")
    written = {path.name for path in (tmp_path / "report").rglob("*") if path.is_file()}
    pngs = [name for name in written if name.endswith(".png")]
    assert pngs, written  # the charts matplotlib draws
    assert any(name.endswith(".html") for name in written), written


def test_image_and_its_report(tmp_path):
    photos = tmp_path / "photos"
    for label, index in (("happy", 40), ("neutral", 10)):
        (photos / label).mkdir(parents=True)
        cap = cv2.VideoCapture(str(DEMO_CLIP))
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = cap.read()
        cap.release()
        assert ok and cv2.imwrite(str(photos / label / f"frame{index}.jpg"), image)
    proc = run(EMOTION_EDGE, "image", photos, "--out", tmp_path / "annotated")
    assert len(proc.stdout.splitlines()) == 2
    run(EMOTION_EDGE, "image", photos, "--report", tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["images"] == 2
    assert (tmp_path / "report" / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_mqtt_events_and_the_monitor(mosquitto):
    """paho-mqtt as the Pi's set pins it: a run publishes, `monitor` lists it."""
    run(EMOTION_EDGE, "run", "--source", "demo", "--display", "none", "--max-frames", "20",
        "--mqtt", mosquitto.url)  # fmt: skip
    proc = run(EMOTION_EDGE, "monitor", mosquitto.url, "--once", "1.5", timeout=60)
    assert "1 device(s)" in proc.stdout, proc.stdout


def test_analyze_on_many_videos_without_the_batch_extra(tmp_path):
    # The Pi's install has no Dask: many videos run one after another, and
    # asking for workers is one line naming the extra, not a traceback.
    clips = [short_clip(tmp_path / f"session{n}.mp4") for n in range(2)]
    proc = run(EMOTION_EDGE, "analyze", *clips, "--out", tmp_path / "report")
    assert "one video after another" in proc.stderr
    assert (tmp_path / "report" / "videos.csv").read_text().count("analysed") == 2
    asked = run(EMOTION_EDGE, "analyze", clips[0], "--out", tmp_path / "o", "--workers", "2",
                code=2)  # fmt: skip
    assert "pip install 'emotion-edge[batch]'" in asked.stderr
