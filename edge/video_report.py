"""`emotion-edge analyze VIDEO... --out DIR`: how each person felt, over time.

Every processed frame goes through the same analysis path as the live
pipeline (`FaceAnalyzer`, then the `Tracker` with smoothing and identity),
and the result lands in DIR:

- `faces.csv`: one row per face per processed frame (frame, time_s, track,
  x, y, w, h, label, confidence, one probability column per label), written
  as it goes, so hours of video take no more memory than a minute;
- `tracks.csv`: one row per track: start, end, duration, frames, dominant
  emotion, and the share of its frames in each;
- `timeline.png`: each track's emotion probabilities over time, and how its
  time splits between emotions;
- `report.html`: one self-contained page (the plot embedded) with the tracks
  table, the input and the settings;
- `summary.json`: the same figures for a program.

The plot is drawn from a bounded sample per track (at most `MAX_POINTS`,
evenly spaced, thinned by halving as a track grows), so memory stays flat
whatever the length.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import __version__
from edge.analysis import FaceAnalyzer
from edge.config import RunConfig
from edge.frames import Face
from edge.sources.base import FrameError, SourceError
from edge.sources.video import VideoSource
from edge.tracking import Tracker

log = logging.getLogger(__name__)

MAX_POINTS = 2000  # per track, for the plot
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


class AnalyzeError(RuntimeError):
    """An input that cannot be analysed; the message names it and the cause."""


@dataclass
class TrackSummary:
    """What is kept per track: counts and a bounded sample, never every frame."""

    id: int
    start_s: float
    end_s: float = 0.0
    frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stride: int = 1
    seen: int = 0
    times: list[float] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)

    def add(self, time_s: float, face: Face, labels: list[str]) -> None:
        self.end_s = time_s
        self.frames += 1
        self.counts[face.label] = self.counts.get(face.label, 0) + 1
        if self.seen % self.stride == 0:
            self.times.append(time_s)
            self.probs.append([face.probs.get(label, 0.0) for label in labels])
            if len(self.times) > MAX_POINTS:  # thin to every other point
                self.times, self.probs = self.times[::2], self.probs[::2]
                self.stride *= 2
        self.seen += 1

    def row(self, labels: list[str]) -> dict:
        dominant = max(self.counts, key=self.counts.get) if self.counts else ""
        return {
            "track": self.id,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "duration_s": round(self.end_s - self.start_s, 3),
            "frames": self.frames,
            "dominant": dominant,
            **{
                f"share_{label}": round(self.counts.get(label, 0) / self.frames, 4)
                for label in labels
            },
        }


def list_videos(paths: list[Path]) -> list[Path]:
    """The video files named, and those in the folders named (recursively)."""
    videos = []
    for path in paths:
        if path.is_dir():
            videos += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            videos.append(path)
    return videos


def analyze_video(
    video: Path,
    out_dir: Path,
    config: RunConfig,
    analyzer: FaceAnalyzer,
    every: int = 1,
    progress: bool = True,
) -> dict:
    """Analyse one video into `out_dir`; returns its summary (also summary.json)."""
    try:
        source = VideoSource(video).open()
    except SourceError as exc:  # its message names the file already
        raise AnalyzeError(str(exc)) from None
    labels = list(analyzer.labels)
    tracking = config.tracking
    tracker = Tracker(
        tracking.alpha if tracking.smoothing else 1.0, tracking.iou, tracking.max_missed
    )
    analyzer.detector.forget()  # a new video: nothing carried over from the last
    fps = source.fps or 30.0
    total = source.frame_count
    tracks: dict[int, TrackSummary] = {}
    rows = frames = index = decode_errors = 0
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = _progress(total, video.name, progress)
    try:
        with (out_dir / "faces.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            columns = ["frame", "time_s", "track", "x", "y", "w", "h", "label", "confidence"]
            writer.writerow(columns + labels)
            while True:
                try:
                    captured = source.read()
                except FrameError:
                    decode_errors += 1
                    index += 1
                    continue
                if captured is None:
                    break
                bar.update(1)
                if index % every:
                    index += 1
                    continue
                image = captured.image
                faces = analyzer.analyze(image)  # the largest [detector] max_faces only
                faces = tracker.track(faces, image)
                time_s = index / fps
                for face in faces:
                    track = tracks.setdefault(face.track, TrackSummary(face.track, time_s))
                    track.add(time_s, face, labels)
                    x, y, w, h = face.box
                    probs = (f"{face.probs.get(k, 0.0):.4f}" for k in labels)
                    place = [index, f"{time_s:.3f}", face.track, x, y, w, h]
                    writer.writerow([*place, face.label, f"{face.confidence:.4f}", *probs])
                    rows += 1
                frames += 1
                index += 1
    finally:
        bar.close()
        source.close()
    if frames == 0:
        raise AnalyzeError(f"{video}: no frame could be decoded: is it a video?")
    elapsed = time.perf_counter() - started
    summary = {
        "input": str(video),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "settings": {
            "every": every,
            "max_faces": config.detector.max_faces,
            "detector": config.detector.model_dump(),
            "smoothing": config.tracking.smoothing,
            "model": config.classifier.model_name,
        },
        "video": {"frames": index, "fps": round(fps, 3), "duration_s": round(index / fps, 3)},
        "frames_processed": frames,
        "decode_errors": decode_errors,
        "face_rows": rows,
        "tracks": [tracks[t].row(labels) for t in sorted(tracks)],
        "seconds": round(elapsed, 2),
        "processed_fps": round(frames / elapsed, 2) if elapsed else 0.0,
    }
    if not tracks:
        log.warning("%s: no face found in %d frames", video, frames)
    write_tracks_csv(out_dir / "tracks.csv", summary["tracks"], labels)
    plot = timeline(list(tracks.values()), labels, out_dir / "timeline.png")
    write_html(out_dir / "report.html", summary, plot)
    # Last, and whole or not at all: its presence says the analysis finished.
    partial = out_dir / "summary.json.partial"
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    partial.replace(out_dir / "summary.json")
    return summary


def _progress(total: int, name: str, enabled: bool):
    """A progress bar with an ETA on a terminal (tqdm), silent elsewhere."""
    from tqdm import tqdm

    return tqdm(
        total=total or None, desc=name, unit="frame", disable=None if enabled else True, leave=False
    )


def write_tracks_csv(path: Path, rows: list[dict], labels: list[str]) -> None:
    fields = ["track", "start_s", "end_s", "duration_s", "frames", "dominant"]
    fields += [f"share_{label}" for label in labels]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def timeline(tracks: list[TrackSummary], labels: list[str], path: Path) -> Path:
    """Per track: its emotion probabilities over time (stacked), and its time per emotion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the eight longest tracks, in the order they appeared
    shown = sorted(sorted(tracks, key=lambda t: -t.frames)[:8], key=lambda t: t.start_s)
    colours = plt.get_cmap("tab10").colors
    rows = max(1, len(shown))
    fig, axes = plt.subplots(
        rows, 2, figsize=(11, 1.9 * rows + 0.8), squeeze=False,
        gridspec_kw={"width_ratios": [4, 1]},
    )  # fmt: skip
    for ax_time, ax_share, track in zip(axes[:, 0], axes[:, 1], shown, strict=False):
        probs = np.asarray(track.probs).T
        ax_time.stackplot(track.times, probs, colors=colours[: len(labels)], labels=labels)
        ax_time.set_xlim(track.start_s, max(track.end_s, track.start_s + 1e-3))
        ax_time.set_ylim(0, 1)
        ax_time.set_ylabel(f"track {track.id}")
        shares = [track.counts.get(label, 0) / track.frames for label in labels]
        ax_share.barh(labels, shares, color=colours[: len(labels)])
        ax_share.set_xlim(0, 1)
        ax_share.tick_params(labelsize=7)
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("share of the track's frames")
    axes[0, 0].legend(loc="upper left", ncol=len(labels), fontsize=7, bbox_to_anchor=(0, 1.35))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_html(path: Path, summary: dict, plot: Path) -> None:
    """One page, nothing to fetch: the plot inline, the tracks, the settings."""
    image = base64.b64encode(plot.read_bytes()).decode()
    tracks = summary["tracks"]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (tracks[0] if tracks else {}))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
        for row in tracks
    )
    settings = html.escape(json.dumps(summary["settings"], indent=1))
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8">
<title>emotion-edge: {html.escape(Path(summary["input"]).name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(summary["input"])}</h1>
<p>{summary["video"]["frames"]} frames ({summary["video"]["duration_s"]} s at
{summary["video"]["fps"]} fps), {summary["frames_processed"]} analysed,
{len(tracks)} track(s), {summary["face_rows"]} face rows; made {summary["created"]}
by emotion-edge {summary["version"]}.</p>
<img alt="emotion over time per track" src="data:image/png;base64,{image}">
<h2>Tracks</h2><table><tr>{head}</tr>{body}</table>
<h2>Settings</h2><pre>{settings}</pre>
</body></html>
"""
    )
