"""Photo mode: annotate image files and report their faces, one JSON line each.

For photographs there is no time axis, so no tracking and no smoothing: each
image goes through `FaceAnalyzer.analyze_still` on its own.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import cv2

from edge.analysis import FaceAnalyzer
from edge.labelled_photos import Scores, label_of
from edge.overlay import annotate
from edge.sinks.base import SinkError, describe_os_error
from edge.sources.base import FrameError
from edge.sources.images import list_images, read_image

log = logging.getLogger(__name__)


def annotate_images(
    paths: Iterable[Path],
    analyzer: FaceAnalyzer,
    out_dir: Path | None,
    overwrite: bool = False,
    stream: TextIO = sys.stdout,
    scores: Scores | None = None,
    faces: str = "show",
) -> tuple[int, int]:
    """One JSON line per image to `stream`; annotated copies into `out_dir`,
    in the same sub-folders as under the folder given. With `scores`, images
    in folders named after an emotion are scored (`edge/labelled_photos.py`).
    `faces`: the copies' faces shown, blurred or hidden (`[privacy] faces`).

    Returns (images done, images that could not be read). An unreadable file
    is reported and skipped; the inputs are never written to.
    """
    files = []
    for path in map(Path, paths):
        root = path if path.is_dir() else path.parent
        files += [(file, file.relative_to(root)) for file in list_images(path)]
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise SinkError(f"--out {out_dir} is a file: give a folder for the annotated copies")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(
                f"cannot create --out {describe_os_error(exc, out_dir)}: choose a writable folder"
            ) from None
        inputs = {f.resolve() for f, _ in files}
    done = failed = 0
    for path, relative in files:
        try:
            image = read_image(path)
        except FrameError as exc:
            log.error("%s", exc)
            failed += 1
            continue
        result = analyzer.analyze_still(image)
        record = {"path": str(path), "faces": [face.to_json() for face in result.faces]}
        if scores is not None and (truth := label_of(path, scores.labels)) is not None:
            largest = max(result.faces, key=lambda f: f.box[2] * f.box[3], default=None)
            scores.add(truth, largest.label if largest else None)
            record["folder_label"] = truth
        if out_dir is not None:
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.resolve() in inputs:
                raise SinkError(f"{target} is an input image: choose another --out folder")
            if target.exists() and not overwrite:
                raise SinkError(f"{target} exists: choose another --out or pass --overwrite")
            ok, data = cv2.imencode(target.suffix or ".jpg", annotate(image, result, faces=faces))
            if not ok:
                target = target.with_suffix(".jpg")
                ok, data = cv2.imencode(".jpg", annotate(image, result, faces=faces))
            try:
                data.tofile(target)
            except OSError as exc:
                raise SinkError(
                    f"cannot write {describe_os_error(exc, target)}: check the --out folder"
                ) from None
            record["annotated"] = str(target)
        stream.write(json.dumps(record) + "\n")
        stream.flush()
        done += 1
    return done, failed
