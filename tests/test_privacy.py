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
from conftest import DEMO_CLIP, ROOT, assert_one_line_error, demo_frame, run_cli

from edge.analysis import FaceAnalyzer
from edge.config import ClassifierConfig, DetectorConfig, RunConfig
from edge.engine import Pipeline
from edge.frames import Result
from edge.overlay import annotate
from edge.privacy import in_masks
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
