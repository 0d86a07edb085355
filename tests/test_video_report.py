"""`emotion-edge analyze`: per-person emotion over time from videos."""

import csv
import json

from conftest import DEMO_CLIP, demo_truth, run_cli

from edge.frames import Face
from edge.scoring import match
from edge.video_report import MAX_POINTS, TrackSummary

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def test_analyze_the_demo_clip(tmp_path):
    proc = run_cli("analyze", str(DEMO_CLIP), "--out", str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("faces.csv", "tracks.csv", "timeline.png", "report.html", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "faces.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["frame", "time_s", "track", "x", "y", "w", "h", "label",
                             "confidence", *LABELS]  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["face_rows"] == len(rows)
    truth = demo_truth()["frames"]
    assert summary["frames_processed"] == len(truth)
    with (tmp_path / "tracks.csv").open() as handle:
        tracks = list(csv.DictReader(handle))
    assert {t["track"] for t in tracks} == {r["track"] for r in rows}
    # each person of the clip is followed by one track for most of their frames
    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        by_frame.setdefault(int(row["frame"]), []).append(row)
    people: dict[str, list[str]] = {}
    for frame in truth:
        for face in frame["faces"]:
            rows_here = by_frame.get(frame["frame"], [])
            detected = [{"box": [int(r[k]) for k in "xywh"], "row": r} for r in rows_here]
            found = match([face], detected)  # the one rule for "found" (edge.scoring)
            if found:
                people.setdefault(face["file"], []).append(found[0][1]["row"]["track"])
    assert len(people) >= 15
    for file, track_ids in people.items():
        main = max(set(track_ids), key=track_ids.count)
        assert track_ids.count(main) >= 0.8 * len(track_ids), file
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html


def test_every_second_frame_and_a_bad_input_among_good_ones(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out"
    proc = run_cli("analyze", str(bad), str(DEMO_CLIP), "--out", str(out), "--every", "2",
                   timeout=300)  # fmt: skip
    assert proc.returncode == 1  # one input failed
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert errors[0].count("notes.mp4") == 1  # named once, not once per layer
    summary = json.loads((out / "faces" / "summary.json").read_text())
    assert summary["frames_processed"] == (len(demo_truth()["frames"]) + 1) // 2
    again = run_cli("analyze", str(DEMO_CLIP), "--out", str(out / "faces"))
    assert again.returncode == 1 and "--overwrite" in again.stderr  # nothing overwritten


def test_a_track_keeps_a_bounded_sample_for_its_plot():
    track = TrackSummary(1, 0.0)
    face = Face((0, 0, 10, 10), 0.9, "happy", 0.9, {label: 1 / 7 for label in LABELS}, 1)
    for i in range(50_000):
        track.add(i / 30, face, LABELS)
    assert track.frames == 50_000 and len(track.times) <= MAX_POINTS
    assert track.times[-1] >= 1600  # the sample still spans the whole track


def test_missing_input_is_one_line(tmp_path):
    proc = run_cli("analyze", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
