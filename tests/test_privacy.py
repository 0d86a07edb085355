"""[privacy]: faces unrecognisable in every image that leaves the process,
masks neither analysed nor shown. "Unrecognisable" is measured: the detail
(variance of the Laplacian) inside each face box against the source's."""

import importlib.util
import json
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from conftest import DEMO_CLIP, ROOT, assert_one_line_error, demo_frame, demo_truth, run_cli

from edge.analysis import FaceAnalyzer
from edge.config import ClassifierConfig, DetectorConfig, RunConfig
from edge.engine import Pipeline
from edge.frames import Result
from edge.overlay import annotate, private_copy
from edge.privacy import edge_band, in_masks
from edge.scoring import load_events
from edge.sinks import SinkError
from edge.tracking import iou

MAX_DETAIL = 0.1  # a blurred face keeps under a tenth of its detail

# The measure scripts/privacy_detail.py reports: detail at the scale that tells
# faces apart, where a video codec's 8-pixel blocks do not count.
_spec = importlib.util.spec_from_file_location(
    "privacy_detail", ROOT / "scripts" / "privacy_detail.py"
)
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)
detail = _script.detail


@pytest.fixture(scope="module")
def photo():
    image = demo_frame(40)
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        result = analyzer.analyze_still(image)
    assert len(result.faces) == 2
    return image, result


def test_blur_leaves_a_face_a_position_not_a_person(photo):
    image, result = photo
    shown = annotate(image, result, faces="blur")
    for face in result.faces:
        assert detail(shown, face.box) < MAX_DETAIL * detail(image, face.box)
    # away from the faces (grown by a sixth) and their labels, nothing changed
    assert np.array_equal(shown[-60:, :], image[-60:, :])
    hidden = annotate(image, result, faces="hide")
    for face in result.faces:
        assert detail(hidden, face.box) == 0
    assert np.array_equal(annotate(image, result), annotate(image, result, faces="show"))


def test_masks_are_black_and_faces_centred_there_are_not_analysed(photo):
    image, result = photo
    left = min(result.faces, key=lambda f: f.box[0])
    mask = [0.0, 0.0, (left.box[0] + left.box[2]) / image.shape[1], 1.0]  # the left face
    assert in_masks(left.box, [mask], (image.shape[1], image.shape[0]))
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig(), [mask]) as analyzer:
        faces = analyzer.analyze(image)
    assert len(faces) == 1 and faces[0].box[0] > left.box[0] + left.box[2] / 2
    kept = Result(result.frame, [f for f in result.faces if f is not left])  # as analysed
    shown = annotate(image, kept, masks=[mask])
    x1 = round(mask[2] * image.shape[1])
    assert not shown[:, :x1].any()


def test_a_recording_and_its_events_with_blur_and_a_mask(tmp_path):
    width = 640
    mask = [0.0, 0.0, 0.3, 0.3]  # the top-left corner: no face of the clip's first scene
    config = RunConfig.model_validate(
        {
            "source": {"name": "demo"},
            "output": {
                "display": "none",
                "record": str(tmp_path / "out.mkv"),
                "events": str(tmp_path / "events.jsonl"),
            },
            "privacy": {"faces": "blur", "masks": [mask]},
            "run": {"max_frames": 60},
        }
    )
    Pipeline(config).run()
    events = load_events(tmp_path / "events.jsonl")
    recording = cv2.VideoCapture(str(tmp_path / "out.mkv"))
    source = cv2.VideoCapture(str(DEMO_CLIP))
    checked = 0
    for event in events:
        ok, shown = recording.read()
        ok2, original = source.read()
        assert ok and ok2
        # black (below the HUD's line of text, which is drawn over everything)
        assert shown[40 : int(0.3 * 480) - 2, : int(0.3 * width) - 2].max() <= 40
        boxes = [face["box"] for face in event["faces"]]
        for box in boxes:
            assert not in_masks(box, [mask], (width, 480))
            # another face's box and label drawn across this one is drawing, not face
            crossed = any(iou(box, other) > 0 for other in boxes if other is not box)
            if box[2] >= 40 and not crossed:
                assert detail(shown, box) < MAX_DETAIL * detail(original, box), event["frame"]
                checked += 1
    assert checked >= 30


def test_the_stream_and_an_annotated_upload_show_no_face(tmp_path):
    from test_web import LivePipeline, read_parts, web_config

    config = web_config().model_copy(
        update={"privacy": RunConfig.model_validate({"privacy": {"faces": "blur"}}).privacy}
    )
    image = demo_frame(40)
    with LivePipeline(config) as live:
        # the upload: its faces, and the answer's picture at those boxes
        _, jpeg = cv2.imencode(".jpg", image)
        request = urllib.request.Request(
            live.url + "api/analyze?annotate=inline",
            data=jpeg.tobytes(),
            headers={"Content-Type": "image/jpeg"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        import base64

        shown = cv2.imdecode(
            np.frombuffer(base64.b64decode(answer["annotated"].split(",", 1)[1]), np.uint8),
            cv2.IMREAD_COLOR,
        )
        assert len(answer["faces"]) == 2
        for face in answer["faces"]:
            assert detail(shown, face["box"]) < MAX_DETAIL * detail(image, face["box"])
        # the stream: the faces the pipeline reports are blurred in the frame sent
        # (the clip's faces stand still within a scene, so the latest boxes fit it)
        with live.get("stream.mjpg") as response:
            _, part = read_parts(response, 3)[-1]
        frame = cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR)
        with live.get("api/latest") as response:
            latest = json.loads(response.read())
        original = demo_frame(latest["frame"] % 294)
        assert latest["faces"]
        for face in latest["faces"]:
            assert detail(frame, face["box"]) < MAX_DETAIL * detail(original, face["box"])


def test_privacy_keeps_the_sensors_own_preview_off(fake_picamera2, fake_screen):
    fake_screen(connected=True)
    config = {"source": {"name": "picamera2"}, "privacy": {"faces": "blur"}}
    Pipeline(
        RunConfig.model_validate(
            {**config, "output": {"display": "auto"}, "run": {"max_frames": 3}}
        )
    ).run()
    assert "start_preview:DRM" not in fake_picamera2.instances[0].calls  # drawn by us instead
    with pytest.raises(SinkError, match="straight from the sensor, faces unblurred"):
        Pipeline(RunConfig.model_validate({**config, "output": {"display": "drm"}})).run()


def test_bad_privacy_values_are_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[privacy]\nmasks = [[0.8, 0.1, 0.5, 0.2]]\n")
    assert_one_line_error(run_cli("check-config", str(config)), "privacy.masks", "not inside")
    config.write_text('[privacy]\nfaces = "smudge"\n')
    assert_one_line_error(run_cli("check-config", str(config)), "privacy.faces")
    config.write_text("[privacy]\nedge_band = 0.7\n")  # both bands would cover it all
    assert_one_line_error(run_cli("check-config", str(config)), "privacy.edge_band")


def test_pausing_from_the_page_stops_analysis_and_pictures(tmp_path):
    from test_web import LivePipeline, read_parts, web_config

    def post(url: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with LivePipeline(web_config()) as live:
        assert live.stats()["paused"] is False
        assert post(live.url + "api/pause", b'{"paused": "yes"}')[0] == 400
        assert post(live.url + "api/pause", b'{"paused": true}') == (200, {"paused": True})
        assert live.stats()["paused"] is True
        processed = live.stats()["frames_processed"]
        with live.get("stream.mjpg") as response:
            parts = read_parts(response, 4)
        frame = cv2.imdecode(np.frombuffer(parts[-1][1], np.uint8), cv2.IMREAD_GRAYSCALE)
        assert frame.std() < 30  # the dark "paused" card, not the scene
        assert live.stats()["frames_processed"] > processed  # the pipeline runs on
        assert live.stats()["faces"] == 0
        assert post(live.url + "api/pause", b'{"paused": false}') == (200, {"paused": False})


def test_a_pause_holds_across_a_restart_and_the_events_say_so(tmp_path, monkeypatch, caplog):
    """Paused, then the service restarts (a power cut): it starts paused, says
    so in one line, analyses nothing, and its events mark the pause."""
    from test_web import LivePipeline, web_config

    caplog.set_level("INFO")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))

    def post(url: str, body: bytes, content_type: str = "application/json"):
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    events = tmp_path / "events.jsonl"
    config = web_config().model_copy(deep=True)
    config.output.events = str(events)
    with LivePipeline(config) as live:
        assert post(live.url + "api/pause", b'{"paused": true}') == (200, {"paused": True})
        _, jpeg = cv2.imencode(".jpg", demo_frame(40))
        status, answer = post(live.url + "api/analyze", jpeg.tobytes(), "image/jpeg")
        assert status == 409 and "paused" in answer["error"]  # an upload is not analysed
    assert "analysis paused (from the web API, client 127.0.0.1)" in caplog.text
    records = load_all(events)
    paused = records_with(records, "pause")
    assert len(paused) == 1 and paused[0]["paused"] is True and "web API" in paused[0]["by"]
    caplog.clear()
    config.output.overwrite = True
    with LivePipeline(config) as live:  # the restart
        assert live.stats()["paused"] is True
        assert live.stats()["faces"] == 0
    assert "analysis is paused (since " in caplog.text and "as before this start" in caplog.text
    after = load_all(events)
    assert records_with(after, "pause")[0]["by"] == "restart"
    assert all(not r.get("faces") for r in records_with(after, "frame"))


def load_all(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records_with(records: list[dict], kind: str) -> list[dict]:
    return [record for record in records if record.get("type") == kind]


# -- fail closed: where the detector blinks, nothing leaves in clear ----------


class Blinking:
    """A detector that misses every face on the given frames (a head turned
    up, eyes shut in laughter), and is the real one on the others."""

    def __init__(self, detector, missed: set[int]) -> None:
        self.detector, self.missed, self.frame = detector, missed, -1

    def __getattr__(self, name):
        return getattr(self.detector, name)

    def __enter__(self):
        self.detector.__enter__()
        return self

    def detect(self, image):
        self.frame += 1
        found = self.detector.detect(image)
        return [] if self.frame in self.missed else found


def in_clear(original: np.ndarray, shown: np.ndarray, box) -> bool:
    """A true face whose detail (eyes, nose, mouth) is still there."""
    return detail(shown, box) >= MAX_DETAIL * detail(original, box)


def test_a_face_the_detector_misses_on_a_frame_stays_obscured():
    from edge.classifier import EmotionClassifier
    from edge.detectors import make_detector

    missed = {12, 13, 17, 25}
    detector = Blinking(make_detector(DetectorConfig()), missed)
    analyzer = FaceAnalyzer(
        detector, EmotionClassifier.from_config(ClassifierConfig()), privacy=True
    )
    config = RunConfig.model_validate(
        {
            "source": {"name": "demo"},
            "output": {"display": "none"},
            "privacy": {"faces": "blur"},
            "run": {"max_frames": 30},
        }
    )
    results = []
    Pipeline(config, analyzer=analyzer, on_result=results.append).run()
    truth = {f["frame"]: f["faces"] for f in demo_truth()["frames"]}
    checked = 0
    for result in results:
        if result.frame.index not in missed:
            continue
        assert result.faces == [] and result.hidden  # nothing labelled, something hidden
        shown = private_copy(result.frame.image, result, "blur")
        for face in truth[result.frame.index]:
            assert not in_clear(result.frame.image, shown, face["box"]), result.frame.index
            checked += 1
    assert checked == sum(len(truth[i]) for i in missed) > 0


def blurred_demo(frames: int) -> list[Result]:
    """The demo clip's first `frames` results with the far search and blur on."""
    config = RunConfig.model_validate(
        {
            "source": {"name": "demo"},
            "output": {"display": "none"},
            "detector": {"tiles": 3},
            "privacy": {"faces": "blur"},
            "run": {"max_frames": frames},
        }
    )
    results: list[Result] = []
    Pipeline(config, on_result=results.append).run()
    return results


def test_a_stream_is_obscured_whole_until_the_whole_view_was_searched():
    results = blurred_demo(40)
    concealed = [r.frame.index for r in results if r.concealed]
    assert concealed and concealed[0] == 0  # from the very first frame
    assert concealed == list(range(len(concealed))) and len(concealed) < 30  # then never again
    first = results[0]
    shown = private_copy(first.frame.image, first, "blur")
    height, width = shown.shape[:2]
    whole = (0, 0, width, height)
    assert detail(shown, whole) < MAX_DETAIL * detail(first.frame.image, whole)


def test_faces_that_arrive_where_no_search_has_looked_yet_are_obscured():
    # The demo clip's frame 240 is a new scene: three 60 px faces, too small
    # for the whole-frame pass, appear in a view searched long ago. Until a
    # tile's search has looked where the picture changed (and then its finds
    # speak for it), the change is obscured: none of them leaves in clear.
    results = blurred_demo(250)
    truth = {f["frame"]: f["faces"] for f in demo_truth()["frames"]}
    arrived = [r for r in results if r.frame.index >= 240]
    assert not any(r.concealed for r in arrived)  # not by hiding all of the picture
    assert sum(len(truth[r.frame.index]) for r in arrived) == 30
    for result in arrived:
        shown = private_copy(result.frame.image, result, "blur")
        for face in truth[result.frame.index]:
            assert not in_clear(result.frame.image, shown, face["box"]), result.frame.index


def test_a_far_find_is_obscured_before_it_is_confirmed():
    from benchmarks.distance import portraits, scenes
    from edge.detectors import make_detector

    rng = np.random.default_rng(3)
    with_face, truths = next(scenes(portraits()[:1], 36, (640, 480), rng))
    box = truths[0][0]
    with make_detector(DetectorConfig()) as detector:
        detector.hide_unsure(DetectorConfig().min_confidence)  # no unsure band: candidates only
        for frame in range(30):
            found = detector.detect(with_face)
            hidden = detector.unsure()
            if not found:  # not a face yet: wherever a tile found it, it is hidden
                if any(iou(box, other) > 0.3 for other in hidden):
                    break
            else:
                pytest.fail(f"frame {frame}: labelled before the far find was ever hidden")
        else:
            pytest.fail("the far face was never found in 30 frames")


def test_a_face_partly_inside_a_mask_is_still_obscured(photo):
    image, result = photo
    left = min(result.faces, key=lambda f: f.box[0])
    x, y, w, h = left.box
    # the mask covers the face's centre and its left half: the right half is outside
    mask = [0.0, 0.0, (x + w * 0.6) / image.shape[1], 1.0]
    with FaceAnalyzer.from_config(
        DetectorConfig(), ClassifierConfig(), [mask], privacy=True
    ) as analyzer:
        masked = analyzer.analyze_still(image)
    assert all(f.box != left.box for f in masked.faces)  # not analysed, as documented
    shown = private_copy(image, masked, "blur", [mask])
    x1 = round(mask[2] * image.shape[1])
    outside = (x1, y + h // 4, x + w - x1, h // 2)  # the face's part beyond the mask
    gray, shown_gray = (cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) for i in (image, shown))
    ox, oy, ow, oh = outside
    original_part = gray[oy : oy + oh, ox : ox + ow].astype(np.float64)
    shown_part = shown_gray[oy : oy + oh, ox : ox + ow].astype(np.float64)
    assert (
        cv2.Laplacian(shown_part, cv2.CV_64F).var()
        < MAX_DETAIL * cv2.Laplacian(original_part, cv2.CV_64F).var()
    )


class FindsNothing(Blinking):
    """A detector that finds nothing, sure or unsure: the worst it can do with
    a face cut by the frame's edge (the real one now and then finds a part)."""

    def __init__(self, detector) -> None:
        super().__init__(detector, set())

    def detect(self, image):
        self.detector.detect(image)
        return []

    def unsure(self):
        return []


def test_a_face_cut_by_the_frames_edge_is_obscured():
    # The demo clip's frame 30, moved right by a third of its width (the
    # privacy benchmark's `edge` clip): the right face runs two thirds off
    # the frame, its centre outside, where BlazeFace has no anchor.
    from edge.classifier import EmotionClassifier
    from edge.detectors import make_detector

    image = demo_frame(30)
    width = image.shape[1]
    shift = width // 3
    shifted = np.full_like(image, 90)
    shifted[:, shift:] = image[:, : width - shift]
    truth = {f["frame"]: f["faces"] for f in demo_truth()["frames"]}[30]
    cut = [
        (x + shift, y, width - x - shift, h)
        for x, y, w, h in (face["box"] for face in truth)
        if x + shift < width < x + shift + w
    ]
    assert cut
    shown = {}
    for band in (0.0, RunConfig().privacy.edge_band):
        detector = FindsNothing(make_detector(DetectorConfig()))
        classifier = EmotionClassifier.from_config(ClassifierConfig())
        with FaceAnalyzer(detector, classifier, privacy=True, edge_band=band) as analyzer:
            shown[band] = private_copy(shifted, analyzer.analyze_still(shifted), "blur")
    for box in cut:
        assert in_clear(shifted, shown[0.0], box)  # nothing found, nothing hidden
        assert not in_clear(shifted, shown[RunConfig().privacy.edge_band], box)


def test_the_edge_band_runs_along_the_longer_sides():
    assert edge_band((640, 480), 0.1) == [(0, 0, 64, 480), (576, 0, 64, 480)]
    assert edge_band((480, 640), 0.1) == [(0, 0, 480, 64), (0, 576, 480, 64)]
    assert edge_band((640, 480), 0.0) == []


def test_where_obscured_boxes_overlap_no_seam_crosses_a_face(photo):
    # A larger place to obscure (a change no search has seen, a missed
    # track's path) whose edge, grown, runs down a face's middle: the edge
    # between two blurs is detail of its own unless the face is smoothed last.
    image, result = photo
    face = result.faces[0]
    x, y, w, h = face.box
    wide = (x + w, y - h, 3 * w, 3 * h)
    shown = private_copy(image, Result(result.frame, [face], hidden=[wide]), "blur")
    assert not in_clear(image, shown, face.box)


@pytest.mark.parametrize("kind", ["demo", "edge", "far"])
def test_under_one_face_in_a_hundred_leaves_in_clear_on_the_privacy_clips(kind, tmp_path):
    """The privacy benchmark's measure (benchmarks/privacy.py) on its clips: the
    demo clip, its faces run off the edge, and walking in from afar."""
    from benchmarks.privacy import leak, make_clip

    clip, boxes = make_clip(kind, tmp_path)
    row = leak(clip, boxes)
    assert row["faces"] >= 250 and row["frames"] == len(boxes)
    assert row["after"] < 0.01 * row["faces"], row


def test_the_notice_is_on_every_picture_that_leaves_by_default(tmp_path):
    """[privacy] notice (EU AI Act Art. 50(3)): drawn along the bottom of each
    recorded frame unless turned off; the web page's copy: test_web_browser."""
    assert RunConfig().privacy.notice == "Emotion recognition in use"
    strips = {}
    for notice in ("Emotion recognition in use", ""):
        config = RunConfig.model_validate(
            {
                "source": {"name": "demo"},
                "output": {"display": "none", "record": str(tmp_path / f"{len(notice)}.mkv")},
                "privacy": {"notice": notice},
                "run": {"max_frames": 5},
            }
        )
        Pipeline(config).run()
        recording = cv2.VideoCapture(str(tmp_path / f"{len(notice)}.mkv"))
        ok, frame = recording.read()
        assert ok
        strips[notice] = frame[-24:, :]
    source = demo_frame(0)[-24:, :].astype(np.float64)
    with_notice, without = strips["Emotion recognition in use"], strips[""]
    assert abs(without.astype(np.float64).mean() - source.mean()) < 8  # the scene itself
    assert with_notice.mean() < 0.6 * source.mean()  # a dark strip...
    assert (with_notice > 200).sum() > 100  # ...with white text on it
