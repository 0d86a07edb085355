"""How much of a face's detail `[privacy] faces = "blur"` leaves, inside the
face boxes and outside them, on the demo clip through the real pipeline.

Detail is the variance of the Laplacian at the scale that tells faces apart
(the box's inner half at 32x32, as tests/test_privacy.py measures it), in
the annotated frames against the source's, medians over every face box of
every frame; "outside" is the same measure on same-sized patches with no face.

    python scripts/privacy_detail.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import DEMO_CLIP, RunConfig  # noqa: E402
from edge.engine import Pipeline  # noqa: E402
from edge.overlay import annotate  # noqa: E402
from edge.tracking import iou  # noqa: E402


def detail(image: np.ndarray, box) -> float:
    """Detail at the scale that tells faces apart: the box's inner half (away
    from drawn lines) at 32x32, where eyes and mouth remain and a video
    codec's 8-pixel blocks do not, then the variance of its Laplacian."""
    x, y, w, h = box
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    inner = gray[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]
    small = cv2.resize(inner, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    return float(cv2.Laplacian(small, cv2.CV_64F).var())


def main() -> int:
    results = []
    config = RunConfig.model_validate({"source": {"name": "demo"}, "output": {"display": "none"}})
    Pipeline(config, on_result=results.append).run()
    inside, outside = [], []
    for result in results:
        image = result.frame.image
        shown = annotate(image, result, faces="blur")
        boxes = [f.box for f in result.faces]
        for box in boxes:
            if box[2] < 40 or any(iou(box, o) > 0 for o in boxes if o is not box):
                continue
            if (base := detail(image, box)) > 0:
                inside.append(detail(shown, box) / base)
            # the same-sized patch mirrored across the frame, if no face is there
            mirror = (image.shape[1] - box[0] - box[2], box[1], box[2], box[3])
            if all(iou(mirror, o) == 0 for o in boxes) and (base := detail(image, mirror)) > 0:
                outside.append(detail(shown, mirror) / base)
    print(
        f"{DEMO_CLIP.name}, {len(results)} frames: detail kept inside face boxes, median "
        f"{statistics.median(inside):.3f} (p95 {np.percentile(inside, 95):.3f}, "
        f"{len(inside)} boxes); outside, median {statistics.median(outside):.3f} "
        f"({len(outside)} patches)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
