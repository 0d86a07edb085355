"""`emotion-edge analyze` on many videos: a real Dask LocalCluster (worker
processes) on short clips cut from the demo clip, against single-video runs."""

import csv
import json

import cv2
import pytest
from conftest import DEMO_CLIP, assert_one_line_error, run_cli

from edge.batch import plan

pytest.importorskip("distributed", reason="the [batch] extra is not installed")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three 40-frame clips of the demo clip's scenes, and a file that is not a video."""
    folder = tmp_path_factory.mktemp("clips")
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while (read := cap.read())[0]:
        frames.append(read[1])
    cap.release()
    for n, start in enumerate((0, 60, 120)):
        size = frames[0].shape[1::-1]
        writer = cv2.VideoWriter(str(folder / f"clip{n}.mkv"), cv2.VideoWriter_fourcc(*"MJPG"),
                                 fps, size)  # fmt: skip
        for image in frames[start : start + 40]:
            writer.write(image)
        writer.release()
    (folder / "broken.mp4").write_text("not a video")
    return folder


def rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def batch(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch")
    proc = run_cli("analyze", str(clips), "--out", str(out), "--workers", "2", timeout=300)
    return out, proc


def test_many_videos_on_a_local_cluster_give_the_single_runs_rows(clips, batch, tmp_path):
    out, proc = batch
    assert proc.returncode == 1, proc.stderr  # one input failed, the others did not
    assert "on 2 local worker process(es)" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "Traceback" not in proc.stderr
    videos = {row["folder"]: row for row in rows(out / "videos.csv")}
    assert videos["broken"]["status"] == "failed" and "broken.mp4" in videos["broken"]["error"]
    combined = rows(out / "tracks.csv")
    for n in range(3):
        assert videos[f"clip{n}"]["status"] == "analysed"
        single = tmp_path / f"clip{n}"
        alone = run_cli("analyze", str(clips / f"clip{n}.mkv"), "--out", str(single))
        assert alone.returncode == 0, alone.stderr
        mine = [
            {k: v for k, v in row.items() if k != "video"}
            for row in combined
            if row["video"] == str(clips / f"clip{n}.mkv")
        ]
        assert mine == rows(single / "tracks.csv") and mine  # the same rows, in order
        assert rows(out / f"clip{n}" / "faces.csv") == rows(single / "faces.csv")
    parquet = pytest.importorskip("pyarrow.parquet").read_table(out / "tracks.parquet")
    assert len(parquet) == len(combined) and parquet.column_names == list(combined[0])
    assert parquet.column("dominant").to_pylist() == [row["dominant"] for row in combined]
    index = (out / "index.html").read_text()
    assert index.count('href="clip') == 3 and "failed: " in index


def test_a_rerun_resumes_and_redoes_only_what_is_unfinished(clips, batch):
    out, _ = batch
    before = rows(out / "tracks.csv")
    kept = (out / "clip0" / "summary.json").stat().st_mtime_ns
    (out / "clip2" / "summary.json").unlink()  # as a run cut short leaves it
    proc = run_cli("analyze", str(clips), "--out", str(out), "--workers", "2", timeout=300)
    assert proc.returncode == 1, proc.stderr  # the broken file still fails, alone
    assert proc.stderr.count("analysed before") == 2  # clip0 and clip1
    assert "clip2.mkv: 40 frames" in proc.stderr  # redone
    assert (out / "clip0" / "summary.json").stat().st_mtime_ns == kept
    assert rows(out / "tracks.csv") == before
    statuses = {row["folder"]: row["status"] for row in rows(out / "videos.csv")}
    assert statuses == {"broken": "failed", "clip0": "kept", "clip1": "kept", "clip2": "analysed"}


def test_without_dask_many_videos_run_one_after_another(clips, tmp_path):
    hide = tmp_path / "no-dask"
    (hide / "distributed").mkdir(parents=True)
    (hide / "distributed" / "__init__.py").write_text("raise ImportError('no dask here')\n")
    env = {"PYTHONPATH": str(hide)}
    out = tmp_path / "out"
    proc = run_cli("analyze", str(clips / "clip0.mkv"), str(clips / "clip1.mkv"), "--out",
                   str(out), env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Dask is not installed: one video after another" in proc.stderr
    assert {row["status"] for row in rows(out / "videos.csv")} == {"analysed"}
    asked = run_cli("analyze", str(clips / "clip0.mkv"), "--out", str(tmp_path / "o2"),
                    "--workers", "2", env=env)  # fmt: skip
    assert_one_line_error(asked, "needs Dask", "emotion-edge[batch]")


def test_a_cluster_that_does_not_answer_is_one_line(clips, tmp_path):
    proc = run_cli("analyze", str(clips / "clip0.mkv"), "--out", str(tmp_path),
                   "--cluster", "tcp://127.0.0.1:9", timeout=120)  # fmt: skip
    assert_one_line_error(proc, "--cluster tcp://127.0.0.1:9", "dask scheduler")


def test_videos_with_the_same_name_get_a_folder_each(tmp_path):
    jobs = plan([tmp_path / "day1/p01.mp4", tmp_path / "day2/p01.mp4", tmp_path / "p02.mp4"],
                tmp_path / "out")  # fmt: skip
    names = [job.folder.name for job in jobs]
    assert len(set(names)) == 3 and names[2] == "p02"
    assert all(name.startswith("p01-") for name in names[:2])


def test_a_summary_is_written_whole_or_not_at_all(clips, tmp_path):
    proc = run_cli("analyze", str(clips / "clip0.mkv"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["frames_processed"] == 40
    assert not list(tmp_path.glob("*.partial"))


def test_an_existing_cluster_runs_the_videos_by_its_address(clips, tmp_path):
    from distributed import LocalCluster

    videos = [str(clips / "clip0.mkv"), str(clips / "clip1.mkv")]
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        proc = run_cli("analyze", *videos, "--out", str(tmp_path), "--cluster", address,
                       timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"on the cluster at {address}" in proc.stderr
    assert {row["status"] for row in rows(tmp_path / "videos.csv")} == {"analysed"}
