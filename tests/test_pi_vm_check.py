"""`make pi-vm-check`'s own logic, without a VM: what it reads from the
guest's stats and events, and the one-line refusals. The VM itself is a
release check (minutes under emulation), not part of `make test`."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from scripts import pi_vm_check as check


class FakeGuest:
    """Answers `out` with the files the service writes under /var/lib/emotion-edge."""

    def __init__(self, stats: list[dict]):
        self.stats = stats

    def out(self, script: str, timeout: float = 120) -> str:
        assert "stats" in script
        return "\n".join(json.dumps(record) for record in self.stats)


def start(run: str, t: str) -> dict:
    return {"type": "start", "run": run, "t": t}


def snap(run: str, elapsed: float, processed: int) -> dict:
    return {"type": "stats", "run": run, "elapsed_s": elapsed, "frames_processed": processed}


T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_frames_after_a_moment_count_the_running_run_or_a_new_one():
    guest = FakeGuest(
        [
            start("a", "2027-01-15T08:00:00+00:00"),
            snap("a", 1.0, 10),
            snap("a", 2.0, 20),
            snap("a", 3.0, 20),  # stalled from here
            snap("a", 4.0, 20),
            start("b", "2027-01-15T08:00:10+00:00"),
            snap("b", 1.0, 0),
            snap("b", 2.0, 3),
        ]
    )
    assert check.frames_after(guest, T0 + 2.5) == T0 + 12.0  # the new run's first frames
    assert check.frames_after(guest, T0 + 0.5) == T0 + 1.0
    assert check.frames_after(guest, T0 + 2.5, new_run=True) == T0 + 12.0
    assert check.frames_after(guest, T0 + 20) is None
    assert check.frames_since(guest, T0 + 11.5) == 3
    assert check.frames_since(guest, T0 + 1.5) == 3  # counted in the newest run


def test_a_missing_tool_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pi_vm_check.py")],
        env={"PATH": str(tmp_path), "PI_VM_BUILD": str(tmp_path / "build")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "is missing" in lines[0] and "apt-get install" in lines[0], lines


def test_an_unknown_scenario_is_one_line():
    assert check.main(["--only", "boot,reboot"]) == 2


def test_the_tables_come_from_the_results_files():
    files = sorted((ROOT / "benchmarks/results/dev-2core").glob("pi-vm-check*.json"))
    assert files, "no pi-vm-check results file"
    for path in files:
        result = json.loads(path.read_text())
        table = check.table(result)
        runs = [run for run in ("first_run", "cached_run") if run in result]
        assert runs, f"no run in {path.name}"
        for run in runs:  # a run from an empty build/pi-vm, a cached one, or both
            recorded = result[run]["scenarios"]
            assert {"install", "boot", "sandbox", "hang", "unplug", "powercut"} <= set(recorded)
            for name in recorded:
                assert f"| {run.replace('_', ' ')} | {name} |" in table
        assert "min" in check.summary(result)


def test_deadlines_stretch_with_the_guests_own_frame_rate():
    snaps = [start("a", "2027-01-15T08:00:00+00:00")]
    snaps += [snap("a", float(t), 10 + t // 4) for t in range(0, 41)]  # 0.25 FPS
    fps = check.guest_fps(FakeGuest(snaps))
    assert fps == pytest.approx(0.25, abs=0.01)
    assert check.stretch(fps) == pytest.approx(4.0, rel=0.05)  # 5 s becomes 20 s
    assert "guest 0.25 FPS" in check.scaled(5, fps)
    assert check.stretch(30.0) == 1.0 and check.scaled(5, 30.0) == "5 s"  # never shortened
    assert check.stretch(0.0) == 20.0  # a stopped guest is a failure, not a slow pass
    assert check.guest_fps(FakeGuest([])) == 0.0


def test_picamera2_runs_only_where_libcamera_has_a_virtual_camera():
    assert check.main(["--suite", "bookworm", "--only", "picamera2"]) == 2
    yaml = check.virtual_yaml()
    assert '"Virtual0":' in yaml and "width: 640" in yaml and "width: 320" in yaml
    assert f'path: "{check.VIRTUAL_FRAMES}/"' in yaml


def test_the_guests_raw_role_shim_patches_libcamera_once_it_is_imported(tmp_path):
    """scripts/pi_vm/virtual_camera.py over a libcamera shaped like the
    binding: Raw answered with the Viewfinder configuration, the rest as is."""
    package = tmp_path / "libcamera"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import enum\n"
        "class StreamRole(enum.Enum):\n    Raw = 0\n    Viewfinder = 1\n"
        "class Camera:\n"
        "    def generate_configuration(self, roles):\n"
        "        return None if StreamRole.Raw in roles else [r.name for r in roles]\n"
    )
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import virtual_camera, libcamera\n"
        "c = libcamera.Camera()\n"
        "print(c.generate_configuration([libcamera.StreamRole.Raw]),"
        " c.generate_configuration([libcamera.StreamRole.Viewfinder]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "scripts" / "pi_vm"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["['Viewfinder']", "['Viewfinder']"]


def screen_with(frame, size=(1280, 800)):
    """A screen as the console sink leaves it: `frame` scaled into place, bars black."""
    import cv2
    import numpy as np

    from edge.sinks.console import placement

    screen = np.zeros((size[1], size[0], 3), np.uint8)
    x, y, w, h = placement((frame.shape[1], frame.shape[0]), size, True)
    screen[y : y + h, x : x + w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    return screen


def test_the_screen_check_tells_the_annotated_picture_from_the_bare_one(tmp_path):
    """What the guest runs on QEMU's screendump, run here on screens made as
    the console sink makes them: the annotated frame passes, the camera's
    bare frame (no notice) and another picture do not."""
    import cv2
    import numpy as np
    from conftest import DEMO_CLIP, demo_frame

    from edge.overlay import draw_notice

    def seen(screen) -> dict:
        cv2.imwrite(str(tmp_path / "screen.ppm"), screen)
        done = subprocess.run(
            [sys.executable, "-c", check.SCREEN_COMPARE, str(tmp_path / "screen.ppm"),
             str(DEMO_CLIP), str(ROOT / "edge" / "config.example.toml")],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        return json.loads(done.stdout.splitlines()[-1])

    frame = demo_frame(120)
    annotated = frame.copy()
    draw_notice(annotated, "Emotion recognition in use")
    good = seen(screen_with(annotated))
    assert good["best"] <= check.SCREEN_MATCH  # (a scene of the clip; many share its room)
    h, w = annotated.shape[:2]  # faces blurred by [privacy] over a third of the picture
    annotated[h // 4 : h * 3 // 4, w // 8 : w * 5 // 8] = cv2.blur(
        annotated[h // 4 : h * 3 // 4, w // 8 : w * 5 // 8], (41, 41)
    )
    assert seen(screen_with(annotated))["best"] <= check.SCREEN_MATCH
    assert good["notice_to_annotated"] * 2 <= good["notice_to_camera"] and good["bars"] == 0
    bare = seen(screen_with(frame))
    assert bare["notice_to_annotated"] * 2 > bare["notice_to_camera"]  # no notice: refused
    grey = seen(screen_with(np.full_like(frame, 90)))
    assert grey["best"] > check.SCREEN_MATCH  # not the camera's picture
