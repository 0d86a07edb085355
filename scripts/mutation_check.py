#!/usr/bin/env python3
"""`make mutation-check`: break the code on purpose, once per named break,
and check that the tests guarding it fail.

A test that passes with the code it guards broken proves nothing. Each
break below is one the project's audits made (and a test was written or
tightened for); this applies each to a scratch copy of the checkout (the
working tree is never touched), runs the tests named for it, and expects
them to fail. Exit 0 when every break is caught, 1 otherwise; with `--out`
it writes the table to docs/mutation.md.

    python scripts/mutation_check.py [--only NAME,...] [--out docs/mutation.md]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Break:
    name: str
    path: str  # the file broken, relative to the checkout
    old: str  # text that must be there exactly once
    new: str
    tests: tuple[str, ...]  # pytest node ids or files that must fail


BREAKS = [
    Break(
        "a soak's unpaced bursts stay paced",
        "edge/engine.py",
        "                if pace and time.monotonic() < self._unpaced_until:\n",
        "                if pace and False:\n",
        (
            "tests/test_pipeline.py::"
            "test_a_paced_file_read_unpaced_for_a_while_takes_frames_as_fast_as_it_can",
        ),
    ),
    Break(
        "blur does nothing",
        "edge/privacy.py",
        "        side = max(1, round(max(x1 - x0, y1 - y0) / BLOCKS))\n",
        "        continue\n        side = max(1, round(max(x1 - x0, y1 - y0) / BLOCKS))\n",
        ("tests/test_privacy.py",),
    ),
    Break(
        "far search takes tile finds as faces unsearched",
        "edge/detectors/mediapipe.py",
        "        confirmed = []\n        for box in list(self._candidates.pending):",
        "        confirmed = [Detection(box, 0.9) for box in self._candidates.pending]\n"
        "        self._candidates.pending.clear()\n"
        "        for box in list(self._candidates.pending):",
        (
            "tests/test_far_search.py::test_a_tile_find_that_is_not_found_again_never_becomes_a_face",
        ),
    ),
    Break(
        "MQTT waits 50 ms a frame while the broker is down",
        "edge/sinks/mqtt.py",
        "    def _write(self, result: Result, annotated: np.ndarray | None) -> None:\n",
        "    def _write(self, result: Result, annotated: np.ndarray | None) -> None:\n"
        "        if self._client is not None and not self._client.is_connected():\n"
        "            time.sleep(0.05)\n",
        ("tests/test_mqtt.py::test_a_broker_outage_loses_no_event_and_slows_nothing",),
    ),
    Break(
        "console permission message loses its fix",
        "edge/sinks/console.py",
        "add the user to the video group ",
        "add yourself ",
        ("tests/test_console.py::test_permission_denied_on_the_framebuffer_names_the_group",),
    ),
    Break(
        "uploads decoded by OpenCV again",
        "edge/web/uploads.py",
        '                picture = ImageOps.exif_transpose(image).convert("RGB")\n',
        "                picture = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8),"
        " cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)\n",
        ("tests/test_upload_fuzz.py::test_mutated_photos_all_get_an_answer_in_bounded_memory",),
    ),
    Break(
        "any Host answered (DNS rebinding)",
        "edge/web/guard.py",
        "        if not host_is_ours(host, names):",
        "        if False:",
        ("tests/test_web.py::test_a_rebinding_host_is_refused_and_the_servers_names_answer",),
    ),
    Break(
        "another site may post",
        "edge/web/guard.py",
        "            why = from_another_site(request)\n",
        "            why = None\n",
        ("tests/test_web.py::test_another_site_cannot_pause_or_analyse",),
    ),
    Break(
        "picamera2's NV12 taken as B, G, R",
        "edge/sources/picamera2.py",
        '                image = to_bgr(image, config["main"])',
        "                pass",
        (
            "tests/test_picamera2.py::"
            "test_a_camera_without_an_isp_gives_nv12_and_the_frames_are_still_bgr",
        ),
    ),
    Break(
        "dataset tests skipped without ../shared",
        "tests/conftest.py",
        "    if missing:\n        pytest.exit(",
        "    if False:\n        pytest.exit(",
        ("tests/test_provenance.py::test_a_run_without_the_shared_datasets_stops_in_one_line",),
    ),
    Break(
        "a face cut by the frame's edge left in clear",
        "edge/analysis.py",
        "            self.unlabelled += edge_band(",
        "            self.unlabelled + edge_band(",  # made, never added
        ("tests/test_privacy.py::test_a_face_cut_by_the_frames_edge_is_obscured",),
    ),
    Break(
        "overlapping blurs leave a seam across a face",
        "edge/privacy.py",
        "    for x, y, w, h in sorted(boxes, key=lambda box: -box[2] * box[3]):\n",
        "    for x, y, w, h in boxes:\n",
        ("tests/test_privacy.py::test_where_obscured_boxes_overlap_no_seam_crosses_a_face",),
    ),
    Break(
        "a tile's unsure find gets no second look",
        "edge/detectors/mediapipe.py",
        "            found += self._unsure[seen:]\n",
        "",
        (
            "tests/test_privacy.py::"
            "test_under_one_face_in_a_hundred_leaves_in_clear_on_the_privacy_clips[far]",
        ),
    ),
    Break(
        "a search that misses an arrival un-hides it at once",
        "edge/detectors/mediapipe.py",
        "            self._unsure += self._motion.unsearched(shadows)\n"
        "        for window in windows:\n",
        "            for window in windows:\n"
        "                self._motion.searched(window)\n"
        "            self._unsure += self._motion.unsearched(shadows)\n"
        "        for window in windows:\n",
        (
            "tests/test_far_search.py::"
            "test_a_change_a_search_misses_on_the_frame_it_arrives_is_still_obscured",
        ),
    ),
    Break(
        "retention deletes a user's file beside ours",
        "edge/retention.py",
        "def ours(path: Path, other: Path, keep_files: int) -> bool:\n",
        "def ours(path: Path, other: Path, keep_files: int) -> bool:\n    return True\n",
        ("tests/test_retention.py::test_retention_deletes_only_the_files_it_wrote",),
    ),
]


def scratch_copy(dest: Path) -> None:
    """The checkout's tracked and new files (not build outputs) at `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def check(item: Break, copy: Path) -> tuple[bool, str, float]:
    """(caught, what the tests said, seconds) for one break applied to `copy`."""
    path = copy / item.path
    original = path.read_text()
    if original.count(item.old) != 1:
        return False, f"the text to break is not in {item.path} exactly once (update the break)", 0
    path.write_text(original.replace(item.old, item.new))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *item.tests],
            cwd=copy, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        path.write_text(original)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    said = lines[-1] if lines else proc.stderr.strip()[-200:]
    # caught: tests ran and failed (exit 1), not a break that stopped them loading
    return proc.returncode == 1 and " failed" in said, said, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated break names (default: all)")
    parser.add_argument("--out", type=Path, help="write the table here (docs/mutation.md)")
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKS if not args.only or b.name in args.only.split(",")]
    rows = ["| break | file | tests | caught | what they said |", "|---|---|---|---|---|"]
    missed = 0
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copy = Path(tmp)
        scratch_copy(copy)
        for item in chosen:
            caught, said, seconds = check(item, copy)
            missed += not caught
            verdict = "yes" if caught else "**NO**"
            print(f"mutation-check: {item.name}: {'caught' if caught else 'MISSED'} "
                  f"({seconds:.0f} s; {said})", flush=True)  # fmt: skip
            tests = ", ".join(f"`{t.split('::')[-1]}`" for t in item.tests)
            rows.append(f"| {item.name} | `{item.path}` | {tests} | {verdict} | {said} |")
    table = "\n".join(rows) + "\n"
    if args.out:
        args.out.write_text(
            "# Breaks the tests catch\n\n"
            "`python scripts/mutation_check.py --out docs/mutation.md` (`make mutation-check`) "
            "applies each break to a scratch copy of the checkout and runs the tests named for "
            "it; each must fail. Written by that command.\n\n" + table
        )
    print(table)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
