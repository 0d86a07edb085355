"""What the pipeline shares with the web page: the newest frame, results and figures.

The pipeline's output thread hands over each result by reference (`publish`)
through a `LatestSlot`, the pipeline's own newest-wins hand-off, which costs
nothing. A separate encoder thread draws the newest one's boxes and labels
(no HUD: the page shows those figures beside the video, at a size a phone
can read) and turns it into a JPEG, once for all viewers, only while
someone watches and at most `[web] stream_fps` times a second; the server's event
loop is told through `on_jpeg`. So neither encoding nor a slow
viewer can hold up the pipeline: a viewer that falls behind simply gets the
newest JPEG when it is ready again, and the frames in between are skipped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from edge.frames import Closed, LatestSlot, Result
from edge.overlay import annotate

LABEL_WINDOW_S = 60.0
POLL_S = 0.5  # the encoder's longest wait before it looks again
# The stream is watched on phones too: a 640-px frame 390 px wide there. Its
# labels are drawn 1.6x the recording's, so their letters stay about 11 px
# tall on that screen (tests/test_web.py measures it).
STREAM_TEXT_SCALE = 1.6


class FrameHub:
    """Thread-safe hand-over between the pipeline and the web server."""

    def __init__(
        self,
        jpeg_quality: int = 80,
        snapshot: Callable[[], dict] | None = None,
        faces: str = "show",
        masks: Sequence[Sequence[float]] = (),
        stream_fps: float = 0.0,
    ) -> None:
        self.jpeg_quality = jpeg_quality
        # At most this many encodes a second ([web] stream_fps; 0: no limit):
        # a browser shows 15 a second as smoothly as 30, for half the encoding.
        self.interval = 1.0 / stream_fps if stream_fps > 0 else 0.0
        self.faces, self.masks = faces, list(masks)  # [privacy]: applied to every frame sent
        self.snapshot = snapshot or (lambda: {})
        self.on_jpeg: Callable[[int, bytes], None] | None = None
        self.encoded = 0
        self._lock = threading.Lock()
        # Newest frame wins: frames published while the encoder is busy are
        # replaced (and counted in `frames.dropped`), never queued.
        self.frames: LatestSlot[Result] = LatestSlot(drop=True)
        self._viewers = 0
        self._latest: Result | None = None
        self._labels: deque[tuple[float, list[str]]] = deque()
        self._encoder: threading.Thread | None = None

    # -- pipeline side ----------------------------------------------------

    @property
    def watching(self) -> bool:
        """Someone is on the stream: only then is a frame worth annotating and encoding."""
        return self._viewers > 0

    def publish(self, result: Result, annotated: np.ndarray | None = None) -> None:
        """Called from the pipeline's output thread for every processed frame
        (`annotated` is not used: the stream is drawn without the HUD)."""
        now = time.monotonic()
        with self._lock:
            self._latest = result
            self._labels.append((now, [face.label for face in result.faces]))
            while self._labels and now - self._labels[0][0] > LABEL_WINDOW_S:
                self._labels.popleft()
        if self._viewers:
            with contextlib.suppress(Closed):  # the server is shutting down
                self.frames.put(result)

    # -- server side --------------------------------------------------------

    def start(self) -> None:
        self._encoder = threading.Thread(target=self._encode_loop, name="web-encoder", daemon=True)
        self._encoder.start()

    def close(self) -> None:
        self.frames.close()
        if self._encoder is not None:
            self._encoder.join(timeout=2)

    def add_viewer(self) -> None:
        with self._lock:
            self._viewers += 1

    def remove_viewer(self) -> None:
        with self._lock:
            self._viewers -= 1
            if not self._viewers:
                with contextlib.suppress(Closed):
                    self.frames.get(timeout=0)  # do not keep a frame nobody watches

    @property
    def viewers(self) -> int:
        return self._viewers

    @property
    def faces_now(self) -> int:
        """Faces in the last processed frame."""
        latest = self._latest
        return 0 if latest is None else len(latest.faces)

    def latest_event(self) -> dict | None:
        """The last processed frame in the events-file schema (None before the first)."""
        with self._lock:
            latest = self._latest
        return None if latest is None else latest.to_event()

    def labels_last_minute(self) -> dict[str, int]:
        """Faces per label over the last minute, one count per face per frame."""
        now = time.monotonic()
        with self._lock:
            counts = Counter(
                label for t, labels in self._labels if now - t <= LABEL_WINDOW_S for label in labels
            )
        return dict(counts.most_common())

    def _encode_loop(self) -> None:
        seq = 0
        next_at = 0.0
        while True:
            # Rate-limited: the frames published meanwhile replace each other
            # in the slot, so the next encode is of the newest.
            while (wait := next_at - time.monotonic()) > 0 and not self.frames.closed:
                time.sleep(min(wait, POLL_S))
            try:
                result = self.frames.get(timeout=POLL_S)
            except Closed:
                return
            if result is None:
                continue
            # boxes and labels, no HUD; faces and masks as [privacy] says
            image = annotate(
                result.frame.image,
                result,
                faces=self.faces,
                masks=self.masks,
                text_scale=STREAM_TEXT_SCALE,
            )
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                continue
            self.encoded += 1
            next_at = time.monotonic() + self.interval
            seq += 1
            on_jpeg = self.on_jpeg
            if on_jpeg is not None:
                try:
                    on_jpeg(seq, data.tobytes())
                except RuntimeError:  # the server's loop closed meanwhile: shutting down
                    return
