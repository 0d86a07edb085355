"""`make figures`: the measured tables of README.md and docs/, written from the
committed results files, never typed.

Each table lives between two markers in a Markdown file:

    <!-- figures:pipeline -->
    ...generated...
    <!-- /figures:pipeline -->

and BLOCKS says which function writes it from which results file. `python
scripts/figures.py` rewrites every block; `--check` only says which differ
(tests/test_figures.py runs it, so a table that disagrees with its results
fails the suite). One figure per configuration: the threaded pipeline's FPS is
results.json's; other runs' FPS appear only beside their side-by-side partner.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "dev-2core"
EVALUATION = ROOT / "docs" / "evaluation"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def source(*paths: Path) -> str:
    names = ", ".join(f"`{p.relative_to(ROOT)}`" for p in paths)
    return f"<sub>From {names}; `make figures` writes this table.</sub>"


# -- the blocks ---------------------------------------------------------------


def pipeline() -> str:
    path = RESULTS / "results.json"
    r = load(path)
    p = r["pipeline"]
    names = {
        "threaded": "emotion-edge, as fast as it goes (`threaded`)",
        "sequential": "the same analysis in one loop, no threads (`sequential`)",
        "seed_style": "Haar + Keras `model.predict` per face, the approach replaced (`seed_style`)",
        "threaded_realtime": "emotion-edge at the clip's 15 fps, like a camera "
        "(`threaded_realtime`)",
    }
    lines = [
        "| configuration | processed FPS | latency p50 / p95 ms | CPU % |",
        "|---|---:|---:|---:|",
    ]
    for key, name in names.items():
        run = p.get(key, {})
        if "fps" not in run:
            continue
        lat = run["latency_ms"]
        lines.append(
            f"| {name} | {run['fps']:.1f} | {lat['p50']:.1f} / {lat['p95']:.1f} | "
            f"{run['cpu_percent']:.0f} |"
        )
    targets = r["targets"]
    per_face = r["components"]["classifier_ms_per_face"]
    machine = r["machine"]
    lines += [
        "",
        f"| ratio, side by side | median of {len(r['rounds'])} rounds | range | target |",
        "|---|---:|---|---|",
    ]
    for key, t in targets.items():
        if "range" in t:
            mark = "" if t["met"] else " (**missed**)"
            lines.append(
                f"| {key} | {t['value']} | {t['range'][0]} to {t['range'][1]} | "
                f"{t['target']}{mark} |"
            )
    lines += [
        "",
        f"On {machine['cpu']}, {machine['cores']} cores. "
        f"emotion-edge processes the clip {targets['threaded_vs_seed_style_fps']['value']:.2f}x "
        f"as fast as the approach it replaces. The int8 classifier takes "
        f"{per_face['int8_tflite']:.2f} ms per face ({per_face['keras_predict']:.1f} ms for "
        f"Keras `predict`).",
        "",
        source(path),
    ]
    return "\n".join(lines)


def accuracy() -> str:
    one = EVALUATION / "report.json"
    flip = EVALUATION / "flip-average" / "report.json"
    meta_path = ROOT / "models" / "emotion_int8.json"
    meta = load(meta_path)["metrics"]["validation"]["float"]

    def cells(m: dict) -> str:
        ferplus = m.get("ferplus", {}).get("majority_accuracy")
        plus = f"{100 * ferplus:.2f} %" if ferplus is not None else "–"
        return f"{100 * m['accuracy']:.2f} % | {plus}"

    lines = [
        "| shipped model | FER-2013 labels | FER+ majority |",
        "|---|---:|---:|",
        f"| int8, `flip_average` (the default) | {cells(load(flip))} |",
        f"| int8 | {cells(load(one))} |",
        f"| float (at quantization) | {cells(meta)} |",
        "",
        source(flip, one, meta_path),
    ]
    return "\n".join(lines)


def flip_gain() -> str:
    one, flip = load(EVALUATION / "report.json"), load(EVALUATION / "flip-average" / "report.json")
    gain = 100 * (flip["accuracy"] - one["accuracy"])
    return (
        f"Flip averaging gains {gain:+.2f} points on PublicTest for the shipped model "
        f"({100 * one['accuracy']:.2f} → {100 * flip['accuracy']:.2f} %).\n\n"
        + source(EVALUATION / "report.json", EVALUATION / "flip-average" / "report.json")
    )


def demo_clip() -> str:
    path = ROOT / "tests" / "baselines" / "demo_clip.json"
    b = load(path)
    return (
        f"On the demo clip, through the whole pipeline, detection recall is "
        f"{b['recall']:.2f}, precision {b['precision']:.2f} and label accuracy "
        f"{b['label_accuracy']:.2f} (`make test` checks every run against these).\n\n"
        + source(path)
    )


# The distance benchmark's settings as `[detector]` (and `[source]`) keys.
SETTING_NAMES = {
    "short": '`range = "short"`, `tiles = 1`',
    "full": '`range = "full"`, `tiles = 1`',
    "short + 2x2 tiles": "`tiles = 2`",
    "short + 3x3 tiles, lores 320": "`tiles = 3`, `[source] lores_width = 320`",
    "short + 3x3 tiles": "`tiles = 3` (the default)",
}


def distance_summary() -> str:
    path = RESULTS / "distance.json"
    rows = [r for r in load(path)["results"] if r["frame"] == "640x480"]
    short = next(r for r in rows if r["setting"] == "short")["detect_ms_one_far_face"]
    lines = [
        "| `[detector]` | farthest with 90 % found | detect ms per frame (x short alone) |",
        "|---|---:|---:|",
    ]
    for r in rows:
        cost = r["detect_ms_one_far_face"]
        setting = SETTING_NAMES.get(r["setting"], r["setting"])
        lines.append(f"| {setting} | {r['reach_m']:.1f} m | {cost:.1f} ({cost / short:.1f}x) |")
    return "\n".join([*lines, "", source(path)])


def _benchmark_table(module: str, name: str) -> Callable[[], str]:
    def block() -> str:
        import importlib

        path = RESULTS / f"{name}.json"
        table = importlib.import_module(module).table(load(path))
        return table.rstrip("\n") + "\n\n" + source(path)

    return block


def soak() -> str:
    path = RESULTS / "soak.json"
    s = load(path)
    first, last = s["first_10_percent"], s["last_10_percent"]

    def lat(part: dict) -> str:
        return " / ".join(f"{part['latency_ms'][q]:.1f}" for q in ("p50", "p95", "p99"))

    rss = s["rss_mb"]
    return "\n".join(
        [
            "| | first 10 % | last 10 % |",
            "|---|---:|---:|",
            f"| processed FPS | {first['fps']:.1f} | {last['fps']:.1f} |",
            f"| latency p50 / p95 / p99 ms | {lat(first)} | {lat(last)} |",
            *(
                [
                    f"| unpaced FPS: a {s['unpaced_burst_s']:g} s burst just after / just "
                    f"before | {s['unpaced_start']['fps']:.1f} | {s['unpaced_end']['fps']:.1f} |"
                ]
                if "unpaced_start" in s
                else []
            ),
            "",
            f"{s['minutes']:g} minutes, {s['frames']:,} frames ({s['frames_skipped']} skipped), "
            f"{s['events_mb']} MB of events. Resident memory {rss['after_warmup']} MB after "
            f"warm-up, {rss['end']} MB at the end: a slope of {rss['slope_mb_per_hour']} MB "
            "per hour.",
            "",
            source(path),
        ]
    )


def front() -> str:
    from host_training.front import table

    path = EVALUATION / "front.json"
    return table(load(path)).rstrip("\n") + "\n\n" + source(path)


def far_summary() -> str:
    far_path, distance_path = RESULTS / "far.json", RESULTS / "distance.json"
    far, arrival = load(far_path), load(distance_path).get("time_to_find", {})
    near, demo = far["unpaced"]["near"], far["unpaced"]["demo"]
    start = far["start_up"]
    lines = [
        f"Side by side with `tiles = 1`: {near['ratio']}x its frame rate on a clip of one "
        f"person filling the frame and {demo['ratio']}x on the demo clip (medians of "
        f"{len(near['fps']['default'])} alternated runs each); "
        f"{far['phantoms_near']['phantom_tracks_per_minute']} phantom tracks per minute on "
        "the one-person clip.",
    ]
    if arrival:
        lines[0] += (
            f" A far face walking into view at {arrival['distance_m']} m is found within "
            f"{arrival['max_frames']} frames ({arrival['max_frames'] / 30:.2f} s at 30 fps; "
            f"median {arrival['median_frames']:g})."
        )
    lines += [
        "",
        f"A default run starts its first frame {start['first_frame_s']} s after launch and "
        f"peaks at {start['peak_rss_mb']:.0f} MB resident"
        f"{'' if start['tensorflow_installed'] else ' (a venv without TensorFlow, as on a Pi)'}; "
        f"of its {start['output_lines']} output lines, {len(start['foreign_lines'])} are "
        "not the project's own.",
        "",
        source(far_path, distance_path),
    ]
    return "\n".join(lines)


def pi_vm_check_summary() -> str:
    """One line per Debian release the check has booted (Trixie first)."""
    from scripts.pi_vm_check import summary

    paths = [p for p in (RESULTS / "pi-vm-check-trixie.json", RESULTS / "pi-vm-check.json")
             if p.is_file()]  # fmt: skip
    lines = []
    for path in paths:
        result = load(path)
        run = result.get("cached_run") or result.get("first_run")
        said = summary(result)
        suite = run.get("suite", "bookworm").capitalize()
        lines.append(f"Debian {suite}: {said[0].lower()}{said[1:]}")
    return "\n".join(lines) + "\n\n" + source(*paths)


def _ship_rule(run: str) -> Callable[[], str]:
    """A candidate against the model shipped when it was judged, rule by rule."""

    def block() -> str:
        path = EVALUATION / f"ship-rule-{run}.json"
        result = load(path)
        lines = ["| rule | result | figures |", "|---|---|---|"]
        for rule in result["verdict"]:
            lines.append(
                f"| {rule['rule']} | {'passed' if rule['passed'] else '**failed**'} "
                f"| {rule['figures']} |"
            )
        return "\n".join(lines) + "\n\n" + source(path)

    return block


BLOCKS: dict[str, Callable[[], str]] = {
    "pipeline": pipeline,
    "accuracy": accuracy,
    "flip-gain": flip_gain,
    "demo-clip": demo_clip,
    "distance-summary": distance_summary,
    "distance": _benchmark_table("benchmarks.distance", "distance"),
    "flip": _benchmark_table("benchmarks.flip", "flip"),
    "mqtt": _benchmark_table("benchmarks.mqtt", "mqtt"),
    "console": _benchmark_table("benchmarks.console", "console"),
    "tracker": _benchmark_table("scripts.tracker_similarity", "tracker_similarity"),
    "soak": soak,
    "pi-vm-check": _benchmark_table("scripts.pi_vm_check", "pi-vm-check"),
    "pi-vm-check-trixie": _benchmark_table("scripts.pi_vm_check", "pi-vm-check-trixie"),
    "pi-vm-check-summary": pi_vm_check_summary,
    "far": _benchmark_table("benchmarks.far", "far"),
    "far-summary": far_summary,
    "front": front,
    "ship-rule": _ship_rule("cnn-crowd-w04"),
    "ship-rule-distill-pair": _ship_rule("cnn-distill-pair"),
    "ensemble": _benchmark_table("benchmarks.ensemble", "ensemble"),
    "profile": _benchmark_table("benchmarks.profile", "profile"),
    "against": _benchmark_table("benchmarks.against", "against"),
}

MARKER = re.compile(r"(<!-- figures:([\w-]+) -->\n)(.*?)(<!-- /figures:\2 -->)", re.S)


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown figures block {name!r}: one of {', '.join(BLOCKS)}")
        return f"{match.group(1)}{BLOCKS[name]()}\n{match.group(4)}"

    return MARKER.sub(replace, text)


def stale(files: list[Path] = DOCS) -> list[Path]:
    """The files whose generated tables differ from what the results give."""
    return [path for path in files if render(path.read_text()) != path.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    changed = stale()
    if args.check:
        for path in changed:
            print(f"{path.relative_to(ROOT)}: tables differ from the results (run make figures)")
        return 1 if changed else 0
    for path in changed:
        path.write_text(render(path.read_text()))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
