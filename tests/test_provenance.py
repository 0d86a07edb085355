"""Every committed result names a clean commit, the shipped model and the
clip it measured, and those are the files in this checkout: a figure in the
README or docs/ cannot silently outlive the model or clip it describes."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from benchmarks.provenance import sha256

MODEL = ROOT / "models" / "emotion_int8.tflite"
RESULTS = sorted(
    [
        *(ROOT / "benchmarks" / "results").rglob("*.json"),
        *(ROOT / "docs" / "evaluation").rglob("report.json"),
        *(ROOT / "docs" / "evaluation").glob("front.json"),
        ROOT / "tests" / "baselines" / "demo_clip.json",
    ]
)


# Results whose figures are not the model's, or are a decision's record:
# the Pi release checks measure the service on an OS (install, boot, watchdog,
# camera reopen, power cut; the model runs, nothing measured is its), and
# front.json is the second pass's candidates beside the model shipped then
# (kept as host_training/teachers/cnn-ferplus-w02.tflite, docs/training.md
# says so). For these the model recorded must be the one their commit
# shipped; every other result must be made with the model shipped now.
OF_THEIR_COMMIT = {"pi-vm-check.json", "pi-vm-check-trixie.json", "front.json"}


def shipped_at(commit: str) -> str | None:
    """The sha256 of models/emotion_int8.tflite in `commit` (None without git)."""
    try:
        proc = subprocess.run(
            ["git", "show", f"{commit}:models/emotion_int8.tflite"], cwd=ROOT, capture_output=True
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return hashlib.sha256(proc.stdout).hexdigest()


def in_history(commit: str) -> bool | None:
    try:
        proc = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True
        )
    except OSError:
        return None
    return proc.returncode == 0


def test_there_are_results_to_check():
    names = {path.name for path in RESULTS}
    assert {"results.json", "soak.json", "distance.json", "flip.json", "mqtt.json"} <= names


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_result_was_made_from_a_clean_commit_with_the_shipped_model(path):
    made = json.loads(path.read_text()).get("provenance")
    rerun = f"{path.relative_to(ROOT)}: rerun what made it from a clean commit and commit it"
    assert made is not None, f"{rerun} (no provenance recorded)"
    assert made["git_clean"] is True and not made["allow_dirty"], f"{rerun} (dirty tree)"
    if path.name in OF_THEIR_COMMIT:
        if in_history("HEAD"):
            then = shipped_at(made["git_commit"])
            assert made["model_sha256"] == then, f"{rerun} (not the model its commit shipped)"
    else:
        assert made["model_sha256"] == sha256(MODEL), f"{rerun} (another model)"
    if "clip" in made:
        assert made["clip_sha256"] == sha256(ROOT / made["clip"]), f"{rerun} (another clip)"
    if in_history("HEAD"):  # a checkout with its history: the commit is in it
        assert in_history(made["git_commit"]), f"{rerun} (commit {made['git_commit']} unknown)"


def test_the_model_metadata_describes_the_shipped_file():
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    assert meta["provenance"]["tflite_sha256"] == sha256(MODEL)
    assert meta["size_bytes"] == MODEL.stat().st_size


def test_a_run_without_the_shared_datasets_stops_in_one_line(tmp_path):
    """Not a green run that checked nothing: `make test` without ../shared fails."""
    env = {**os.environ, "EMOTION_EDGE_SHARED": str(tmp_path / "no-shared-here")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_evaluate.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout[-500:]
    lines = [line for line in proc.stdout.splitlines() if "is missing" in line]
    assert len(lines) == 1 and "fer2013" in lines[0] and "beside the checkout" in lines[0]


def test_results_name_the_commit_checked_out_when_the_run_started(monkeypatch, caplog):
    from benchmarks import provenance as module

    monkeypatch.setattr(module, "_started", None)
    monkeypatch.setattr(module, "git_commit", lambda: "a" * 40)
    monkeypatch.setattr(module, "tree_is_clean", lambda: True)
    module.record_start()
    monkeypatch.setattr(module, "git_commit", lambda: "b" * 40)  # committed during the run
    monkeypatch.setattr(module, "tree_is_clean", lambda: False)
    facts = module.provenance()
    assert facts["git_commit"] == "a" * 40 and facts["git_clean"] is True
    assert facts["git_commit_at_end"] == "b" * 40
    assert "HEAD moved" in caplog.text
