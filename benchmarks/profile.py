"""`python -m benchmarks --profile`: where the threaded pipeline's time goes.

The threaded run (`benchmarks/runners.py`, unpaced, the same clip as the
other figures) runs under py-spy twice, sampling every thread:

- **on CPU**: samples of threads that are running (not waiting on a lock, a
  queue or I/O), the time each stage spends working;
- **holding the GIL** (`--gil`): samples of the one thread that holds the
  interpreter lock. Native work that releases it (the TFLite interpreters'
  `invoke`, most of OpenCV) shows in the first and not here; Python pre- and
  post-processing holds it and shows in both. On two cores, what holds the
  GIL is what the three threads cannot do at once.

The clip is looped to `FRAMES` frames, and only samples inside the three
stages' loops count (not start-up or shut-down). Each sample is charged to
the innermost frame of our own code (`edge/`) on its stack, named by what
it does (`STEPS`: matched on the file, function and the source line being
run, so a native call such as an interpreter's `invoke()` is told apart
from the Python around it), and the table gives
each step's share of all samples of each kind. py-spy samples from its own
process, so the pipeline's code runs unmodified. Writes `profile.json`; the
table goes into docs/benchmarks.md (`make figures`).
"""

from __future__ import annotations

import collections
import linecache
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("benchmarks.profile")
ROOT = Path(__file__).resolve().parent.parent
RATE = 250  # samples per second

#: (step, pattern on "file:function:source line" of our innermost frame),
#: first match wins.
STEPS: list[tuple[str, str]] = [
    ("capture: decode a frame", r"^sources/"),
    ("detect: BlazeFace interpreter", r"detectors/blazeface\.py:.*\.invoke\(\)"),
    (
        "detect: BlazeFace input (warp, colour, scale)",
        r"detectors/blazeface\.py:.*(warpAffine|cvtColor|multiply|tensor)",
    ),
    ("detect: BlazeFace decode + NMS", r"detectors/blazeface\.py"),
    ("detect: far search (change map, tiles)", r"detectors/far_search\.py"),
    ("detect: other", r"detectors/"),
    ("classify: crop + resize", r"preprocess\.py"),
    ("classify: interpreter", r"classifier\.py:.*\.invoke\(\)"),
    ("classify: other", r"classifier\.py|analysis\.py|scoring\.py"),
    ("track", r"tracking\.py"),
    ("privacy", r"privacy\.py"),
    ("output: overlay", r"overlay\.py"),
    ("output: video writer", r"sinks/video\.py"),
    ("output: other sinks", r"sinks/"),
    ("hand-offs (queues)", r"frames\.py:.*(put|get)|engine\.py:_hand_over"),
    ("stats", r"stats\.py"),
    ("pipeline loop", r"engine\.py"),
]
OTHER = "outside edge/"
LOOPS = ("_capture", "_infer", "_output")  # the stages' loops (edge/engine.py)
FRAMES = 3000  # the clip looped to this many frames: seconds of steady state
# A thread blocked in a hand-off's lock; py-spy counts some of these as
# running (no GIL held: never in the GIL profile).
WAITING = "waiting in a hand-off (blocked)"


def step_of(stack: list[tuple[str, str, int]]) -> str:
    """The step of one sampled stack (innermost frame first: (path, function, line))."""
    if stack and stack[0][0].endswith("threading.py") and stack[0][1] == "Condition.wait":
        return WAITING
    for path, function, line in stack:
        match = re.search(r"(?:^|/)edge/(.*)", path)
        if not match:
            continue
        where = match.group(1)
        text = linecache.getline(str(ROOT / "edge" / where), line).strip()
        for step, pattern in STEPS:
            if re.search(pattern, f"{where}:{function}:{text}"):
                return step
        return "edge/: " + where
    return OTHER


def parse_raw(text: str) -> collections.Counter:
    """py-spy's `--format raw --threads` (collapsed stacks: "thread (id): name;
    outermost;...;innermost COUNT") as samples per (thread, step)."""
    counts: collections.Counter = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        if not any(f"Pipeline.{loop} " in part for part in parts for loop in LOOPS):
            continue  # start-up, shut-down: not the steady state measured
        thread = re.match(r"thread \(\w+\): (.*)", parts[0])
        name = thread.group(1) if thread else "?"
        frames = []
        for part in reversed(parts[1:] if thread else parts):
            # "function (path:line)"
            match = re.match(r"(.*) \((.*?):(\d+)\)$", part.strip())
            if match:
                frames.append((match.group(2), match.group(1), int(match.group(3))))
        counts[(name, step_of(frames))] += int(count)
    return counts


def record(
    clip: str, max_frames: int, gil: bool, python: str = sys.executable
) -> collections.Counter:
    """Samples per step of one threaded run under py-spy."""
    spy = shutil.which("py-spy") or str(Path(python).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        command = [
            spy, "record", "--format", "raw", "--rate", str(RATE), "--threads",
            "--output", str(raw), "--nonblocking",
            *(["--gil"] if gil else []),
            "--", python, "-c",
            "import sys; from benchmarks.runners import threaded; "
            "threaded(sys.argv[1], int(sys.argv[2]), loop=True)",
            clip, str(max_frames),
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0 or not raw.exists():
            raise RuntimeError(
                f"py-spy failed ({proc.returncode}): {proc.stderr.strip()[-300:]}; "
                "install it with pip install py-spy (it needs ptrace: run as root or "
                "allow it with kernel.yama.ptrace_scope=0)"
            )
        return parse_raw(raw.read_text())


def run(clip: str, max_frames: int = FRAMES) -> dict:
    """Both profiles of the threaded run: each (thread, step)'s share of samples."""
    shares: dict[tuple[str, str], dict[str, float]] = collections.defaultdict(dict)
    samples = {}
    for kind, gil in (("on_cpu", False), ("gil", True)):
        log.info("profile: %s", kind)
        counts = record(clip, max_frames, gil)
        samples[kind] = sum(counts.values())
        for key, n in counts.items():
            shares[key][kind] = round(n / samples[kind], 4)
    rows = [
        {
            "thread": thread,
            "step": step,
            "on_cpu": got.get("on_cpu", 0.0),
            "gil": got.get("gil", 0.0),
        }
        for (thread, step), got in shares.items()
    ]
    rows.sort(key=lambda row: -row["on_cpu"])
    return {
        "clip": clip,
        "frames": max_frames,
        "rate_hz": RATE,
        "samples": samples,
        "rows": rows,
    }


def table(result: dict, smallest: float = 0.005) -> str:
    """The markdown table of the profile, steps by their on-CPU share."""
    lines = [
        "| thread | step | share of on-CPU samples | share of GIL-holding samples |",
        "|---|---|---:|---:|",
    ]
    rest = {"on_cpu": 0.0, "gil": 0.0}
    for row in result["rows"]:
        if max(row["on_cpu"], row["gil"]) < smallest:
            rest = {kind: rest[kind] + row[kind] for kind in rest}
            continue
        lines.append(
            f"| {row['thread']} | {row['step']} | {row['on_cpu']:.1%} | {row['gil']:.1%} |"
        )
    lines.append(
        f"| | the rest (each under {smallest:.1%}) | {rest['on_cpu']:.1%} | {rest['gil']:.1%} |"
    )
    lines.append("")
    lines.append(
        f"{result['samples']['on_cpu']:,} on-CPU and {result['samples']['gil']:,} GIL samples "
        f"of every thread at {result['rate_hz']} Hz (py-spy), each profile one threaded run "
        f"on `{Path(result['clip']).name}`."
    )
    return "\n".join(lines)
