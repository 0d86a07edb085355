"""Score an events file against a clip's ground truth (e.g. the demo clip's).

A detection matches a true face when its centre lies inside the true box
(one to one, nearest centres first). Reported: detection recall and
precision, label accuracy over matched faces, and how a detector box relates
to the true FER frame (the crop margin and offset that would reproduce it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_events(path: Path | str) -> list[dict]:
    """The `frame` events of a JSON-lines file. Other types (a run's `start`) are
    skipped, as is a line a power cut left unfinished."""
    events = []
    for line in Path(path).read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("type") == "frame":
            events.append(event)
    return events


def _centre(box) -> tuple[float, float]:
    return box[0] + box[2] / 2.0, box[1] + box[3] / 2.0


def match(truth_faces: list[dict], detected: list[dict]) -> list[tuple[dict, dict]]:
    """(truth, detection) pairs: detection centre inside the true box, nearest first."""
    candidates = []
    for t, truth in enumerate(truth_faces):
        tx, ty, tw, th = truth["box"]
        tcx, tcy = _centre(truth["box"])
        for d, det in enumerate(detected):
            cx, cy = _centre(det["box"])
            if tx <= cx <= tx + tw and ty <= cy <= ty + th:
                candidates.append(((cx - tcx) ** 2 + (cy - tcy) ** 2, t, d))
    pairs, used_t, used_d = [], set(), set()
    for _, t, d in sorted(candidates):
        if t not in used_t and d not in used_d:
            used_t.add(t)
            used_d.add(d)
            pairs.append((truth_faces[t], detected[d]))
    return pairs


def score(events: list[dict], truth: dict) -> dict:
    """Recall, precision and label accuracy of `events` against `truth`."""
    by_frame = {event["frame"]: event["faces"] for event in events}
    n_truth = n_detected = n_matched = n_correct = 0
    margins, offsets = [], []
    per_label: dict[str, list[int]] = {}
    frames_missing = 0
    for frame in truth["frames"]:
        if frame["frame"] not in by_frame:
            frames_missing += 1
            n_truth += len(frame["faces"])
            continue
        detected = by_frame[frame["frame"]]
        n_truth += len(frame["faces"])
        n_detected += len(detected)
        for true_face, det in match(frame["faces"], detected):
            n_matched += 1
            correct = det["label"] == true_face["label"]
            n_correct += correct
            per_label.setdefault(true_face["label"], [0, 0])
            per_label[true_face["label"]][0] += correct
            per_label[true_face["label"]][1] += 1
            side = max(det["box"][2], det["box"][3])
            margins.append((true_face["box"][2] / side - 1.0) / 2.0)
            (tcx, tcy), (dcx, dcy) = _centre(true_face["box"]), _centre(det["box"])
            offsets.append(((tcx - dcx) / side, (tcy - dcy) / side))
    return {
        "frames": len(truth["frames"]),
        "frames_missing": frames_missing,
        "true_faces": n_truth,
        "detections": n_detected,
        "matched": n_matched,
        "recall": round(n_matched / n_truth, 4) if n_truth else 0.0,
        "precision": round(n_matched / n_detected, 4) if n_detected else 0.0,
        "label_accuracy": round(n_correct / n_matched, 4) if n_matched else 0.0,
        "per_label_accuracy": {k: round(c / n, 4) for k, (c, n) in sorted(per_label.items())},
        "framing": {
            "margin_median": round(float(np.median(margins)), 3) if margins else None,
            "centre_offset_median": [round(float(v), 3) for v in np.median(offsets, axis=0)]
            if offsets
            else None,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m edge.scoring EVENTS TRUTH`: print the scores as JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edge.scoring", description=__doc__)
    parser.add_argument("events", type=Path, help="events file (emotion-edge run --events)")
    parser.add_argument("truth", type=Path, help="ground truth, e.g. assets/demo/faces.truth.json")
    args = parser.parse_args(argv)
    result = score(load_events(args.events), json.loads(args.truth.read_text()))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
