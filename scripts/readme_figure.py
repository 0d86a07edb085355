"""Make docs/annotated.png, the README's picture: a frame of the demo clip as the
real pipeline annotates it (boxes, labels, track ids, HUD).

    python scripts/readme_figure.py [--frame 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frame", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "annotated.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "annotated.mp4"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "edge",
                "run",
                "--source",
                "demo",
                "--display",
                "none",
                "--record",
                str(video),
                "--max-frames",
                str(args.frame + 1),
            ],
            check=True,
            cwd=ROOT,
        )
        cap = cv2.VideoCapture(str(video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, args.frame)
        ok, image = cap.read()
        cap.release()
    if not ok:
        print(f"frame {args.frame} not in the recording", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), image)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
