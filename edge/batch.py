"""`emotion-edge analyze` on many videos: each one a task, in parallel on Dask.

A study's hours of video outgrow one process long before they outgrow one
machine. Each video is one task (its tracks need its frames in order), run
by `analyze_video` exactly as a single video is; Dask's distributed
scheduler spreads the tasks over a local cluster (one single-threaded worker
process per core) or an existing one (`--cluster tcp://host:8786`), so the
same command scales from a laptop to many machines without a scheduler of
our own. A worker loads the models once and keeps them for every video it
is given.

Results come back as each video finishes. A video that fails (unreadable,
no frame) is one line and a row marked failed; the others go on. A video
whose folder already holds a finished analysis (`summary.json`, written
last and atomically) is not redone unless `--overwrite`: a run cut short is
resumed by running it again. Once all are in, the combined tables and page
are written: `videos.csv` (one row per video: status, frames, tracks),
`tracks.csv` (every video's tracks, with its name; also `tracks.parquet`
where pyarrow is installed) and `index.html` linking each video's report.

Without Dask (the Pi's install: `pip install emotion-edge[batch]` adds it)
the videos run one after another in this process, with the same outputs.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.config import RunConfig

log = logging.getLogger(__name__)

BATCH_EXTRA = "pip install 'emotion-edge[batch]'"
VIDEO_FIELDS = ["video", "folder", "status", "frames_processed", "tracks", "face_rows",
                "seconds", "error"]  # fmt: skip


class BatchError(RuntimeError):
    """Batch analysis cannot start (Dask missing, a cluster unreachable)."""


@dataclass
class Job:
    """One video and the folder its results go to."""

    video: Path
    folder: Path


def plan(videos: list[Path], out: Path) -> list[Job]:
    """A results folder per video under `out`, named by its file's stem; two
    videos with the same stem (day1/p01.mp4, day2/p01.mp4) get the stem and
    a short hash of their path, so neither overwrites the other."""
    stems: dict[str, int] = {}
    for video in videos:
        stems[video.stem] = stems.get(video.stem, 0) + 1
    jobs = []
    for video in videos:
        name = video.stem
        if stems[name] > 1:
            name += "-" + hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:8]
        jobs.append(Job(video, out / name))
    return jobs


def finished(folder: Path) -> dict | None:
    """The summary of a finished analysis in `folder`, or None."""
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None


_ANALYZERS: dict[str, object] = {}


def analyze_one(video: str, folder: str, config_json: str, every: int) -> dict:
    """One video into `folder`: its summary, or {"error": ...} naming the
    cause. Runs on a Dask worker (or here); the models are loaded once per
    process and config, and kept for the next video."""
    from edge.analysis import FaceAnalyzer
    from edge.video_report import AnalyzeError, analyze_video

    config = RunConfig.model_validate_json(config_json)
    analyzer = _ANALYZERS.get(config_json)
    if analyzer is None:
        analyzer = FaceAnalyzer.from_config(config.detector, config.classifier).open()
        _ANALYZERS[config_json] = analyzer
    try:
        return analyze_video(Path(video), Path(folder), config, analyzer, every, progress=False)
    except (AnalyzeError, OSError) as exc:
        return {"input": video, "error": str(exc)}


def local_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _on_dask(
    jobs: list[Job], config_json: str, every: int, workers: int | None, cluster: str | None
) -> Iterator[tuple[Job, dict]]:
    """Each job's result as it finishes, from a local cluster or `cluster`."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BatchError(f"parallel analysis needs Dask: {BATCH_EXTRA}") from None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if cluster:
        try:
            client = Client(cluster, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise BatchError(
                f"--cluster {cluster}: no Dask scheduler answers there ({exc}); "
                "start one (`dask scheduler`) or leave --cluster out for a local one"
            ) from None
        where = f"the cluster at {cluster}"
    else:
        count = workers or local_workers()
        local = LocalCluster(
            n_workers=count,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(local)
        where = f"{count} local worker process(es)"
    log.info("analysing %d video(s) on %s", len(jobs), where)
    try:
        futures = {
            client.submit(
                analyze_one, str(j.video), str(j.folder), config_json, every, pure=False
            ): j
            for j in jobs
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield job, future.result()
            except Exception as exc:  # a worker's crash: this video fails, not the batch
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                yield job, {"input": str(job.video), "error": f"{job.video}: {first}"}
    finally:
        client.close()
        if not cluster:
            local.close()


def _in_process(jobs: list[Job], config_json: str, every: int) -> Iterator[tuple[Job, dict]]:
    for job in jobs:
        yield job, analyze_one(str(job.video), str(job.folder), config_json, every)


def analyze_many(
    videos: list[Path],
    out: Path,
    config: RunConfig,
    every: int = 1,
    workers: int | None = None,
    cluster: str | None = None,
    overwrite: bool = False,
) -> list[dict]:
    """Analyse `videos` into folders under `out` and write the combined
    tables; returns one row per video (videos.csv's). On Dask when it is
    installed (or asked for: `workers`, `cluster`), one after another here
    when not."""
    jobs = plan(videos, out)
    outcomes: dict[Path, tuple[str, dict]] = {}  # video: (status, its summary)
    todo = []
    for job in jobs:
        done = None if overwrite else finished(job.folder)
        if done is None:
            todo.append(job)
        else:
            log.info("%s: analysed before (%s): kept; --overwrite redoes it", job.video, job.folder)
            outcomes[job.video] = ("kept", done)
    parallel = bool(workers or cluster) or dask_available()
    if not parallel:
        log.info("Dask is not installed: one video after another (%s runs them in parallel)",
                 BATCH_EXTRA)  # fmt: skip
    else:  # a worker per core: each one's classifier on one thread
        config = config.model_copy(
            update={"classifier": config.classifier.model_copy(update={"num_threads": 1})}
        )
    config_json = config.model_dump_json()
    results = (
        _on_dask(todo, config_json, every, workers, cluster)
        if parallel and todo
        else _in_process(todo, config_json, every)
    )
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="videos", unit="video", disable=None, leave=False)
    frames = 0
    try:
        for job, summary in results:
            bar.update(1)
            if "error" in summary:
                log.error("%s", summary["error"])
                outcomes[job.video] = ("failed", summary)
                continue
            frames += summary["frames_processed"]
            bar.set_postfix(frames=frames)
            log.info(
                "%s: %d frames, %d track(s) in %.1f s -> %s",
                job.video,
                summary["frames_processed"],
                len(summary["tracks"]),
                summary["seconds"],
                job.folder / "report.html",
            )
            outcomes[job.video] = ("analysed", summary)
    finally:
        bar.close()
    done_jobs = [job for job in jobs if job.video in outcomes]
    return write_combined(out, [(job, *outcomes[job.video]) for job in done_jobs])


def write_combined(out: Path, outcomes: list[tuple[Job, str, dict]]) -> list[dict]:
    """videos.csv, tracks.csv (+ .parquet with pyarrow) and index.html in
    `out`, from each video's (job, status, summary); returns videos.csv's rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "video": str(job.video),
            "folder": job.folder.name,
            "status": status,
            "frames_processed": summary.get("frames_processed", ""),
            "tracks": len(summary["tracks"]) if "tracks" in summary else "",
            "face_rows": summary.get("face_rows", ""),
            "seconds": summary.get("seconds", ""),
            "error": summary.get("error", ""),
        }
        for job, status, summary in outcomes
    ]
    with (out / "videos.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=VIDEO_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tracks = [
        {"video": str(job.video), **track}
        for job, _, summary in outcomes
        for track in summary.get("tracks", [])
    ]
    if tracks:
        fields = list(dict.fromkeys(key for track in tracks for key in track))
        with (out / "tracks.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(tracks)
        _write_parquet(out / "tracks.parquet", tracks)
    _write_index(out / "index.html", rows)
    return rows


def _write_parquet(path: Path, tracks: list[dict]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    pq.write_table(pa.Table.from_pylist(tracks), path)


def _write_index(path: Path, rows: list[dict]) -> None:
    def cell(row: dict) -> str:
        name = html.escape(Path(row["video"]).name)
        if row["status"] == "failed":
            return f"<td>{name}</td><td>failed: {html.escape(row['error'])}</td>"
        link = html.escape(f"{row['folder']}/report.html", quote=True)
        return f'<td><a href="{link}">{name}</a></td><td>{row["status"]}</td>'

    body = "\n".join(
        f"<tr>{cell(r)}<td>{r['frames_processed']}</td><td>{r['tracks']}</td></tr>" for r in rows
    )
    failed = sum(r["status"] == "failed" for r in rows)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>emotion-edge analyze: "
        f"{len(rows)} videos</title><h1>{len(rows)} videos, {failed} failed</h1>"
        "<p>Every video's tracks in one table: tracks.csv. Per video: its report.</p>"
        "<table><tr><th>video</th><th>status</th><th>frames</th><th>tracks</th></tr>"
        f"{body}</table>\n"
    )
