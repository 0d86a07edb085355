"""`python -m benchmarks [--quick] [--clip PATH]`: throughput, latency and scaling.
`python -m benchmarks --soak MINUTES`: the long run instead (see benchmarks/soak.py).
`python -m benchmarks --distance`: how far each face-detector setting sees (benchmarks/distance.py).
`python -m benchmarks --mqtt`: the pipeline with MQTT on and off, delivery rate, an outage.
`python -m benchmarks --flip`: the pipeline with flip averaging off and on (benchmarks/flip.py).
`python -m benchmarks --privacy`: true faces left in clear under blur (benchmarks/privacy.py).
`python -m benchmarks --batch`: many videos on 1, 2, N Dask workers (benchmarks/batch.py).
`python -m benchmarks --console`: the console sink's cost per frame (benchmarks/console.py).
`python -m benchmarks --far`: the far-face search's cost and phantoms, start-up and memory
(benchmarks/far.py).
`python -m benchmarks --ensemble`: what two models in `[classifier] models` cost
(benchmarks/ensemble.py).
`python -m benchmarks --against REF`: this tree's pipeline beside commit REF's
(benchmarks/against.py).
`python -m benchmarks --profile`: where the threaded pipeline's time goes, on CPU and holding
the GIL (benchmarks/profile.py, py-spy).

Everything in one run, on one machine, on the same clip, so the ratios compare
like with like: the pipeline configurations (threaded, sequential,
seed-style), the components in isolation, the cost per face, and pipelining
efficiency. Writes `benchmarks/results/<name>/results.json`, `results.md` and
PNG plots. Absolute times on a shared machine are noisy: read the medians and
the ratios. `--quick` takes about a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

from benchmarks import (
    against,
    batch,
    components,
    console,
    distance,
    ensemble,
    far,
    flip,
    mqtt,
    privacy,
    profile,
    runners,
    soak,
    viewers,
)
from benchmarks.provenance import git_commit, provenance, record_start, refuse_dirty
from benchmarks.workloads import FACE_COUNTS, make_face_clip
from edge.config import DEMO_CLIP

log = logging.getLogger("benchmarks")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGETS = {
    "threaded_vs_seed_style_fps": (">=", 30.0),
    "efficiency": (">=", 0.85),
    "latency_p95_vs_stage_sum": ("<=", 1.5),
    "web_3_viewers_vs_0_fps": (">=", 0.9),
    "keras_vs_int8_ms_per_face": (">=", 4.0),
}
PAIRS = 5  # rounds of the pipeline configurations, each ratio taken within one


def in_child(name: str, clip: str, max_frames: int, **kwargs) -> dict:
    """Run a configuration in a fresh process: its CPU and peak RSS are its own."""
    return call_in_child(runners.measure, name, clip, max_frames, **kwargs)


def call_in_child(fn, *args, **kwargs):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def tensorflow_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("tensorflow") is not None
    except ValueError:
        return False


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in (
        "numpy",
        "opencv-contrib-python",
        "mediapipe",
        "ai-edge-litert",
        "tflite-runtime",
        "tensorflow",
        "keras",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": git_commit(),
    }


def thread_stages(stage_ms: dict) -> dict:
    """Median ms of each thread of the threaded design: capture, inference, output."""
    p50 = {name: values["p50"] for name, values in stage_ms.items()}
    return {
        "capture": p50["capture"],
        "infer": p50["detect"] + p50["classify"],
        "output": p50["render"],
    }


def efficiency(threaded: dict, cores: int) -> tuple[float, float]:
    """(processed FPS / ideal FPS, ideal FPS) with ideal = min(1/slowest, cores/sum)."""
    stages = thread_stages(threaded["stage_ms"])
    ideal = min(1000 / max(stages.values()), cores * 1000 / sum(stages.values()))
    return round(threaded["fps"] / ideal, 3), round(ideal, 2)


def scaling(frames: int) -> dict:
    """Per-frame cost and latency against the number of faces in the frame."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = [str(make_face_clip(Path(tmp) / f"faces{n}.mp4", n, frames)) for n in FACE_COUNTS]
        log.info("scaling: %s faces per frame", ", ".join(map(str, FACE_COUNTS)))
        measured = call_in_child(runners.measure_each, clips)
        for count, figures in zip(FACE_COUNTS, measured, strict=True):
            work = sum(figures["stage_ms"][s]["p50"] for s in ("detect", "classify", "render"))
            rows.append(
                {
                    "faces": count,
                    "detected_per_frame": figures["faces"] / frames,
                    "fps": figures["fps"],
                    "frame_ms": round(work, 3),
                    "classify_ms": figures["stage_ms"]["classify"]["p50"],
                    "latency_ms_p50": figures["latency_ms"]["p50"],
                }
            )
    # Fit against the faces actually detected: in a 1280x720 frame BlazeFace
    # short-range (128 px input) misses some of the drawn faces.
    counts = np.array([r["detected_per_frame"] for r in rows], float)
    slope = np.polyfit(counts, [r["frame_ms"] for r in rows], 1)[0]
    classify_slope = np.polyfit(counts, [r["classify_ms"] for r in rows], 1)[0]
    return {
        "rows": rows,
        "per_extra_face_ms": round(float(slope), 3),
        "per_extra_face_classify_ms": round(float(classify_slope), 3),
    }


def round_ratios(runs: dict, cores: int) -> dict:
    """The pipeline's ratios within one round of runs (see `run`)."""
    threaded = runs["threaded"]
    ratios = {}
    if "seed_style" in runs:
        ratios["threaded_vs_seed_style_fps"] = round(threaded["fps"] / runs["seed_style"]["fps"], 2)
    ratios["threaded_vs_sequential_fps"] = round(threaded["fps"] / runs["sequential"]["fps"], 3)
    ratios["efficiency"] = efficiency(threaded, cores)[0]
    live = runs["threaded_realtime"]
    stage_sum = sum(live["stage_ms"][s]["p50"] for s in live["stage_ms"])
    ratios["latency_p95_vs_stage_sum"] = round(live["latency_ms"]["p95"] / stage_sum, 3)
    return ratios


def check_targets(ratios: dict, spread: dict | None = None) -> dict:
    checked = {}
    for key, (op, target) in TARGETS.items():
        value = ratios.get(key)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        checked[key] = {"value": value, "target": f"{op} {target}", "met": met}
        if spread and key in spread:
            checked[key]["range"] = spread[key]
    return checked


def run(args: argparse.Namespace) -> dict:
    clip = str(args.clip)
    max_frames = 120 if args.quick else 0
    repeats = 50 if args.quick else 300
    results: dict = stamped(
        {
            "mode": "quick" if args.quick else "full",
            "clip": clip,
            "max_frames": max_frames or None,
            "pipeline": {},
        },
        args.clip,
        args.allow_dirty,
    )
    # Alternated pairs: each round runs every configuration once, in an order
    # that rotates, so a slow spell of a shared machine falls on all of them;
    # each ratio is taken within a round, and the median round is reported.
    names = ["threaded", "sequential", "seed_style", "threaded_realtime"]
    if not tensorflow_available():
        results["pipeline"]["seed_style"] = {
            "skipped": "needs TensorFlow: pip install -e '.[train]'"
        }
        log.warning("seed_style skipped: TensorFlow is not installed")
        names.remove("seed_style")
    rounds: list[dict] = []
    for round_ in range(args.pairs):
        runs = {}
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            log.info("pipeline, round %d of %d: %s", round_ + 1, args.pairs, name)
            if name == "threaded_realtime":  # paced like a camera: live latency
                runs[name] = in_child("threaded", clip, max_frames, realtime=True)
            else:
                runs[name] = in_child(name, clip, max_frames)
            log.info(
                "  %.1f fps, latency p95 %.1f ms",
                runs[name]["fps"],
                runs[name]["latency_ms"]["p95"],
            )
        rounds.append(runs)
    by_round = [round_ratios(runs, results["machine"]["cores"]) for runs in rounds]
    median_round = sorted(range(len(rounds)), key=lambda i: rounds[i]["threaded"]["fps"])[
        len(rounds) // 2
    ]
    for name in names:
        results["pipeline"][name] = rounds[median_round][name]
    results["rounds"] = by_round
    threaded = results["pipeline"]["threaded"]
    results["ideal_fps"] = efficiency(threaded, results["machine"]["cores"])[1]
    log.info("components: classifier")
    results["components"] = components.classifier_ms(repeats)
    log.info("components: detectors")
    results["components"]["detector_ms_per_frame"] = components.detector_ms(max(10, repeats // 5))
    results["scaling"] = scaling(30 if args.quick else 90)
    log.info("web page: pipeline FPS with 0 and 3 stream viewers")
    results["web"] = {"offline": call_in_child(viewers.compare, clip, (0, 3), args.pairs)}
    if not args.quick:
        results["web"]["realtime"] = call_in_child(viewers.compare, clip, (0, 3), 1, True)

    # The pipeline's ratios: the median over rounds, with their range.
    ratios: dict = {}
    spread: dict = {}
    for key in by_round[0]:
        values = sorted(r[key] for r in by_round)
        ratios[key] = round(statistics.median(values), 3)
        spread[key] = [values[0], values[-1]]
    results["efficiency"] = ratios["efficiency"]
    per_face = results["components"]["classifier_ms_per_face"]
    if "keras_predict" in per_face:
        ratios["keras_vs_int8_ms_per_face"] = round(
            per_face["keras_predict"] / per_face["int8_tflite"], 1
        )
        ratios["float32_tflite_vs_int8_ms_per_face"] = round(
            per_face["float32_tflite"] / per_face["int8_tflite"], 2
        )
    web = sorted(results["web"]["offline"]["pair_ratios"])
    ratios["web_3_viewers_vs_0_fps"] = round(statistics.median(web), 3)
    spread["web_3_viewers_vs_0_fps"] = [web[0], web[-1]]
    results["ratios"] = ratios
    results["targets"] = check_targets(ratios, spread)
    return results


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"{results['mode']} run, clip `{Path(results['clip']).name}`"
        + (f" (first {results['max_frames']} frames)" if results["max_frames"] else ""),
        "",
        "| configuration | FPS | latency p50 / p95 ms | detect p50 ms | classify p50 ms "
        "| render p50 ms | CPU % | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in results["pipeline"].items():
        if "skipped" in f:
            lines.append(f"| {name} | skipped: {f['skipped']} | | | | | | |")
            continue
        s = f["stage_ms"]
        lines.append(
            f"| {name} | {f['fps']:.1f} | {f['latency_ms']['p50']:.1f} / "
            f"{f['latency_ms']['p95']:.1f} | {s['detect']['p50']:.1f} | "
            f"{s['classify']['p50']:.2f} | {s['render']['p50']:.1f} | {f['cpu_percent']:.0f} | "
            f"{f['peak_rss_mb']:.0f} |"
        )
    rounds = len(results.get("rounds", [])) or 1
    lines += [
        "",
        f"| ratio | value (median of {rounds} rounds) | range | target | met |",
        "|---|---:|---|---|---|",
    ]
    for key, t in results["targets"].items():
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        spread = " to ".join(str(v) for v in t["range"]) if "range" in t else ""
        lines.append(f"| {key} | {t['value']} | {spread} | {t['target']} | {met} |")
    per_face = results["components"]["classifier_ms_per_face"]
    lines += [
        "",
        "Classifier, ms per face at batch 1 (one thread): "
        + ", ".join(f"{k} {v:.3f}" for k, v in per_face.items())
        + ".",
        f"Cost of one more face in a frame: {results['scaling']['per_extra_face_ms']:.2f}"
        f" ms (classify: {results['scaling']['per_extra_face_classify_ms']:.2f} ms).",
        model_line(results["model"]),
        "",
        "With the web page on (`--web`), by stream viewers (median runs):",
        "",
        "| mode | viewers | pipeline FPS | CPU % | viewers' own CPU % | JPEG encodes/s "
        "| FPS each viewer got |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode, by_count in results["web"].items():
        for count, w in by_count.items():
            if count == "pair_ratios":
                continue
            got = ", ".join(f"{v:.1f}" for v in w["viewer_fps"]) or "-"
            lines.append(
                f"| {mode} | {count} | {w['fps']:.1f} | {w['cpu_percent']:.0f} | "
                f"{w.get('viewers_cpu_percent', 0):.0f} | {w['encoded_fps']:.1f} | {got} |"
            )
    return "\n".join(lines) + "\n"


def model_line(model: dict) -> str:
    """The model's size and accuracy. The accuracy is not measured here (that
    needs FER-2013 and the float model): it is what `host_training.quantize`
    measured and wrote into the model's metadata, and says so."""
    line = (
        f"Model `{model['file']}` (sha256 {model['sha256'][:12]}): "
        f"{model['size_bytes'] / 1000:.0f} KB"
    )
    validation = model.get("validation", {})
    accuracy = {k: v["accuracy"] for k, v in validation.items() if "accuracy" in v}
    if accuracy:
        line += "; PublicTest accuracy from its metadata (not measured by this run): " + ", ".join(
            f"{kind} {100 * value:.2f} %" for kind, value in accuracy.items()
        )
    return line + "."


def plots(results: dict, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots")
        return []
    written = []
    configs = {k: v for k, v in results["pipeline"].items() if "fps" in v}
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.bar(list(configs), [v["fps"] for v in configs.values()], color="#4a7fb5")
    for i, v in enumerate(configs.values()):
        ax.text(i, v["fps"], f"{v['fps']:.1f}", ha="center", va="bottom")
    ax.set_ylabel("processed FPS")
    ax.set_title(f"Pipeline throughput ({results['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(out / "fps.png")
    plt.close(fig)
    written.append(out / "fps.png")
    rows = results["scaling"]["rows"]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    faces = [r["faces"] for r in rows]
    ax.plot(faces, [r["frame_ms"] for r in rows], "o-", label="work per frame (p50)")
    ax.plot(faces, [r["latency_ms_p50"] for r in rows], "s--", label="end-to-end latency (p50)")
    ax.set_xlabel("faces in the frame")
    ax.set_ylabel("ms")
    ax.set_xticks(faces)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Cost against the number of faces (1280x720)")
    fig.tight_layout()
    fig.savefig(out / "latency_vs_faces.png")
    plt.close(fig)
    written.append(out / "latency_vs_faces.png")
    return written


def run_soak(args: argparse.Namespace, out: Path) -> int:
    log.info("soak: %g minutes on %s, looping, paced like a camera", args.soak, args.clip)
    # A fresh process, so the memory measured is the pipeline's own.
    result = stamped(
        call_in_child(soak.soak, str(args.clip), args.soak), args.clip, args.allow_dirty
    )
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    written = [out / "soak.json", soak.plot(result, out / "soak.png")]
    first, last = result["first_10_percent"], result["last_10_percent"]
    print(
        f"{result['frames']:,} frames in {args.soak:g} min; RSS slope after warm-up "
        f"{result['rss_mb']['slope_mb_per_hour']} MB/h ({result['rss_mb']['after_warmup']} -> "
        f"{result['rss_mb']['end']} MB); FPS first/last 10 %: {first['fps']} / {last['fps']}; "
        f"unpaced FPS start/end: {result['unpaced_start']['fps']} / "
        f"{result['unpaced_end']['fps']}; "
        f"latency p99 first/last 10 %: {first['latency_ms']['p99']} / "
        f"{last['latency_ms']['p99']} ms"
    )
    log.info("wrote %s", ", ".join(str(p) for p in written if p))
    return 0


def stamped(figures: dict, clip: Path | str | None = None, allow_dirty: bool = False) -> dict:
    """A result with when, where, from which commit and with which model and clip."""
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "provenance": provenance(clip, allow_dirty),
        "machine": machine_info(),
        "model": components.model_facts(),
        **figures,
    }


def write_result(out: Path, name: str, result: dict, table: str, *more: Path) -> int:
    """`name`.json and `name`.md (the table, also printed) beside the other results."""
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(table)
    print(table)
    log.info(
        "wrote %s", ", ".join(str(p) for p in [out / f"{name}.json", out / f"{name}.md", *more])
    )
    return 0


def run_distance(args: argparse.Namespace, out: Path) -> int:
    result = stamped(distance.run(count=24 if args.quick else 80), DEMO_CLIP, args.allow_dirty)
    plot = distance.plot(result, out / "distance.png")
    return write_result(out, "distance", result, distance.table(result), plot)


def run_privacy(args: argparse.Namespace, out: Path) -> int:
    result = stamped(
        privacy.run(in_child, pairs=2 if args.quick else 5), DEMO_CLIP, args.allow_dirty
    )
    return write_result(out, "privacy", result, privacy.table(result))


def run_batch(args: argparse.Namespace, out: Path) -> int:
    result = stamped(batch.run(rounds=1 if args.quick else 3), DEMO_CLIP, args.allow_dirty)
    return write_result(out, "batch", result, batch.table(result))


def run_mqtt(args: argparse.Namespace, out: Path) -> int:
    result = stamped(mqtt.run(str(args.clip), call_in_child), args.clip, args.allow_dirty)
    return write_result(out, "mqtt", result, mqtt.table(result))


def run_flip(args: argparse.Namespace, out: Path) -> int:
    result = stamped(
        flip.run(str(args.clip), in_child, pairs=2 if args.quick else flip.PAIRS),
        args.clip,
        args.allow_dirty,
    )
    return write_result(out, "flip", result, flip.table(result))


def run_far(args: argparse.Namespace, out: Path) -> int:
    result = stamped(
        far.run(in_child, call_in_child, 2 if args.quick else far.PAIRS, args.startup_python),
        DEMO_CLIP,
        args.allow_dirty,
    )
    return write_result(out, "far", result, far.table(result))


def run_ensemble(args: argparse.Namespace, out: Path) -> int:
    pairs = 2 if args.quick else ensemble.PAIRS
    result = stamped(ensemble.run(str(args.clip), in_child, pairs), args.clip, args.allow_dirty)
    return write_result(out, "ensemble", result, ensemble.table(result))


def run_against(args: argparse.Namespace, out: Path) -> int:
    result = stamped(
        against.run(args.against, str(args.clip), args.pairs), args.clip, args.allow_dirty
    )
    return write_result(out, "against", result, against.table(result))


def run_profile(args: argparse.Namespace, out: Path) -> int:
    result = stamped(profile.run(str(args.clip)), args.clip, args.allow_dirty)
    return write_result(out, "profile", result, profile.table(result))


def run_console(args: argparse.Namespace, out: Path) -> int:
    result = stamped(
        console.run(str(args.clip), frames=100 if args.quick else 300), args.clip, args.allow_dirty
    )
    return write_result(out, "console", result, console.table(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help=f"rounds of the pipeline configurations side by side (default {PAIRS}, quick 2)",
    )
    parser.add_argument("--clip", type=Path, default=DEMO_CLIP, help="video to run on")
    parser.add_argument("--name", default=None, help="results folder name (default: host)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead: run the pipeline this long on the looping clip, paced like a "
        "camera, and report memory slope and first-vs-last FPS and latency",
    )
    parser.add_argument(
        "--distance",
        action="store_true",
        help="instead: recall, labels and detector cost against face size and distance",
    )
    parser.add_argument(
        "--mqtt",
        action="store_true",
        help="instead: the pipeline with MQTT on vs off, events/s delivered, a broker outage",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="instead: many videos through `analyze` on 1, 2, N local Dask workers",
    )
    parser.add_argument(
        "--privacy",
        action="store_true",
        help="instead: true faces left in clear under [privacy] blur, and its cost",
    )
    parser.add_argument(
        "--flip",
        action="store_true",
        help="instead: the pipeline with [classifier] flip_average off vs on",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="instead: what drawing frames on the console's framebuffer costs per frame",
    )
    parser.add_argument(
        "--far",
        action="store_true",
        help="instead: the far-face search's cost and phantoms, start-up time and memory",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="instead: this tree's threaded pipeline beside commit REF's, alternated pairs",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: where the threaded pipeline's time goes, on CPU and holding the GIL",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="instead: the pipeline with one model and with two in [classifier] models",
    )
    parser.add_argument(
        "--startup-python",
        default=sys.executable,
        help="with --far: the interpreter whose venv the start-up is measured in "
        "(a Pi-like one: pip install -e . without TensorFlow)",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write committed results from a tree with uncommitted changes (recorded)",
    )
    args = parser.parse_args(argv)
    if args.pairs is None:
        args.pairs = 2 if args.quick else PAIRS
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not args.clip.is_file():
        log.error("clip %s not found", args.clip)
        return 2
    out = args.out or RESULTS_DIR / (args.name or socket.gethostname())
    if out.resolve().is_relative_to(RESULTS_DIR) and refuse_dirty(args.allow_dirty):
        return 2
    record_start()  # the results name the code as it was now, not when they are written
    out.mkdir(parents=True, exist_ok=True)
    if args.soak:
        return run_soak(args, out)
    if args.distance:
        return run_distance(args, out)
    if args.mqtt:
        return run_mqtt(args, out)
    if args.flip:
        return run_flip(args, out)
    if args.privacy:
        return run_privacy(args, out)
    if args.batch:
        return run_batch(args, out)
    if args.profile:
        return run_profile(args, out)
    if args.against:
        return run_against(args, out)
    if args.console:
        return run_console(args, out)
    if args.far:
        return run_far(args, out)
    if args.ensemble:
        return run_ensemble(args, out)
    results = run(args)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    written = plots(results, out)
    print(markdown(results))
    log.info(
        "wrote %s", ", ".join(str(p) for p in [out / "results.json", out / "results.md", *written])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
