"""`make pi-vm-check`'s own logic, without a VM: what it reads from the
guest's stats and events, and the one-line refusals. The VM itself is a
release check (minutes under emulation), not part of `make test`."""

import json
import subprocess
import sys

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


def test_the_tables_come_from_the_results_file():
    result = json.loads((ROOT / "benchmarks/results/dev-2core/pi-vm-check.json").read_text())
    table = check.table(result)
    runs = [run for run in ("first_run", "cached_run") if run in result]
    assert runs, "no run in the results file"
    for run in runs:  # a run from an empty build/pi-vm, a cached one, or both
        for name in (*check.SCENARIOS, "install"):
            assert name in result[run]["scenarios"]
            assert f"| {run.replace('_', ' ')} | {name} |" in table
    assert "min" in check.summary(result)
