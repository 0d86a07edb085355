"""benchmarks/profile.py (py-spy's collapsed stacks charged to the pipeline's
steps: the parser on stacks written as py-spy writes them, and one real run)
and benchmarks/against.py (this tree beside an older commit)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO_CLIP, ROOT

from benchmarks import against, profile

# Three samples as `py-spy record --format raw --threads` writes them: the
# thread, then the stack from outermost to innermost, then the count.
RAW = "\n".join(
    [
        "thread (0x7f01): infer;Thread.run (threading.py:982);"
        "Pipeline._infer (edge/engine.py:246);FaceAnalyzer.analyze (edge/analysis.py:120);"
        "BlazeFace.detect (edge/detectors/blazeface.py:{invoke});"
        "Interpreter.invoke (ai_edge_litert/interpreter.py:1015) 7",
        "thread (0x7f01): infer;Thread.run (threading.py:982);Pipeline._infer (edge/engine.py:246);"
        "BlazeFace.detect (edge/detectors/blazeface.py:{nms});"
        "weighted_nms (edge/detectors/blazeface.py:{nms_line}) 2",
        "thread (0x7f02): MainThread;Pipeline._output (edge/engine.py:300);"
        "LatestSlot.get (edge/frames.py:160);Condition.wait_for (threading.py:362);"
        "Condition.wait (threading.py:331) 5",
        "thread (0x7f03): capture;Pipeline._capture (edge/engine.py:190);"
        "VideoSource._read (edge/sources/video.py:76) 3",
        # start-up: outside the stages' loops, not counted
        "thread (0x7f02): MainThread;<module> (edge/engine.py:1);_find_and_load (<frozen>:1) 11",
    ]
)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_samples_are_charged_to_the_step_whose_line_was_running():
    blazeface = Path(profile.ROOT / "edge" / "detectors" / "blazeface.py")
    raw = RAW.format(
        invoke=line_of(blazeface, "self._interpreter.invoke()"),
        nms=line_of(blazeface, "faces = weighted_nms("),
        nms_line=line_of(blazeface, "def weighted_nms") + 1,
    )
    counts = profile.parse_raw(raw)
    assert counts == {
        ("infer", "detect: BlazeFace interpreter"): 7,
        ("infer", "detect: BlazeFace decode + NMS"): 2,
        ("MainThread", profile.WAITING): 5,
        ("capture", "capture: decode a frame"): 3,
    }


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists()),
    reason="py-spy is not installed (pip install -e '.[dev]')",
)
def test_a_real_profile_of_the_threaded_pipeline_finds_its_interpreters():
    counts = profile.record(str(DEMO_CLIP), 60, gil=False)
    steps = {step for _, step in counts}
    assert {"detect: BlazeFace interpreter", "classify: interpreter"} <= steps


# --against checks out a worktree: it needs git and a git checkout (the
# Trixie root the suite also runs in has neither).
needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)


@pytest.mark.slow
@needs_git
def test_against_runs_each_side_from_its_own_tree():
    """`--against REF`: the older side imports the worktree's edge/, not ours."""
    result = against.run("HEAD", str(DEMO_CLIP), pairs=1, max_frames=20)
    assert len(result["fps"]["before"]) == len(result["fps"]["after"]) == 1
    low, high = result["fps_ratio_range"]
    assert low <= result["fps_ratio_median"] <= high
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True
    )
    assert "before" not in worktrees.stdout  # removed after the run


@needs_git
def test_against_an_unknown_commit_is_one_clear_error():
    with pytest.raises(ValueError, match="not a commit in this repository"):
        against.run("no-such-ref", str(DEMO_CLIP), pairs=1)
