"""Run configuration: TOML file, validated at start-up, with command-line overrides.

Unknown keys and wrong types are errors that name the key, so one typo in
/etc/emotion-edge/config.toml cannot silently run with a default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DEMO_CLIP = REPO_ROOT / "assets" / "demo" / "faces.mp4"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Section):
    name: str = Field("auto", description="auto, demo, picamera2, a webcam index, a path or URL")
    realtime: bool = Field(False, description="pace a file at its FPS and drop, like a camera")
    loop: bool = Field(False, description="replay a video file forever")
    wait: bool | None = Field(
        None,
        description="wait for a camera or stream that is missing at start or lost, forever; "
        "default: yes as a service (under systemd), no otherwise",
    )
    width: int = Field(640, ge=16)
    height: int = Field(480, ge=16)
    fps: float = Field(30.0, gt=0)
    lores_width: int | None = Field(
        None,
        ge=0,
        description="picamera2: detect on a low-resolution stream this wide; 0: off; unset: "
        "320, or off with detector tiles (far faces need the full image's detail)",
    )
    lens_position: float | None = Field(
        None,
        ge=0,
        description="picamera2 with a focus motor (Camera Module 3): unset, continuous "
        "autofocus; a number fixes the focus at 1/metres (0: infinity, 2: 50 cm)",
    )


# The names a config may choose; the registries (edge/registry.py) are built
# from these same types, so the lists cannot drift apart.
DetectorName = Literal["mediapipe", "haar"]
DisplayName = Literal["auto", "window", "none", "drm", "console"]
DetectorRange = Literal["short", "full"]

# BlazeFace's two models (models/): on the whole frame, short range sees faces
# down to about a fifth of its width, full range to about 15 %; tiles reach
# farther (docs/distance.md measures it).
RANGE_MODELS = {
    "short": MODELS_DIR / "face_detection_short_range.tflite",
    "full": MODELS_DIR / "face_detection_full_range_sparse.tflite",
}


class DetectorConfig(_Section):
    name: DetectorName = "mediapipe"
    range: DetectorRange = Field(
        "short", description="mediapipe, the whole frame: short (close faces) or full range"
    )
    model: str = Field("", description="a face detection model file instead of the range's")
    tiles: int = Field(
        3,
        ge=1,
        le=3,
        description="mediapipe: also look for far faces on n x n tiles, one tile at a time",
    )
    tile_every: int = Field(
        2,
        ge=1,
        description="look at the next tile every n-th frame (far faces found are "
        "followed on every frame)",
    )
    min_confidence: float = Field(0.5, ge=0, le=1)
    min_face: int = Field(20, ge=8, description="smallest face side in pixels")
    max_faces: int = Field(0, ge=0, description="classify the n largest faces only; 0: all")

    @property
    def model_path(self) -> Path:
        """The model file: `model` when given, else the range's."""
        return Path(self.model) if self.model else RANGE_MODELS[self.range]


class ClassifierConfig(_Section):
    model: str = str(MODELS_DIR / "emotion_int8.tflite")
    models: list[str] = Field(
        [],
        description="an ensemble instead of `model`: these models' probabilities averaged "
        "(each with flip_average when on); docs/training.md measures what it gains",
    )
    num_threads: int = Field(2, ge=1, le=64)
    # Each face also classified mirrored, the two averaged: what it gains and
    # what it costs the pipeline are in docs/benchmarks.md ("Flip averaging").
    flip_average: bool = True

    @property
    def model_paths(self) -> list[Path]:
        """The models a run classifies with: `models` when given, else `model`."""
        return [Path(m) for m in self.models] if self.models else [Path(self.model)]

    @property
    def model_name(self) -> str:
        """How events, the log and the page name the model (or the ensemble)."""
        return " + ".join(p.name for p in self.model_paths)


class TrackingConfig(_Section):
    smoothing: bool = True
    alpha: float = Field(0.4, gt=0, le=1, description="weight of the newest frame")
    iou: float = Field(0.3, gt=0, lt=1)
    max_missed: int = Field(5, ge=0)


class OutputConfig(_Section):
    display: DisplayName = "auto"
    fullscreen: bool | None = Field(
        None, description="unset: the Pi's HDMI preview fills the screen, a window does not"
    )
    record: str = ""
    events: str = ""
    stats: str = ""
    stats_interval: float = Field(5.0, gt=0)
    overwrite: bool = False
    rotate_mb: float = Field(
        0.0, ge=0, description="start a new record/events/stats file past this size; 0: never"
    )
    keep_files: int = Field(10, ge=0, description="rotated files kept beside the current one")
    keep_days: float = Field(
        0.0,
        ge=0,
        description="delete events, stats and recordings older than this many days "
        "(a new file each day); 0: keep them until size rotation does",
    )
    min_free_mb: float = Field(
        200.0, ge=0, description="recording pauses below this much free space; 0: never"
    )


MIN_TOKEN_LENGTH = 16  # a guessable token is a password anyone on the network can try


class WebConfig(_Section):
    listen: str = Field("", description="HOST:PORT or PORT (loopback) for the web page; empty: off")
    token: str = Field("", description="required on every request; must be set beyond loopback")
    hosts: list[str] = Field(
        [], description="names the page is opened by besides its address, localhost, the hostname"
    )
    max_upload_mb: float = Field(10.0, gt=0, le=100)
    jpeg_quality: int = Field(80, ge=10, le=100)
    stream_fps: float = Field(
        15.0,
        ge=0,
        le=120,
        description="most frames a second the stream encodes (once for all viewers; a "
        "viewer gets the newest); 0: every processed frame",
    )

    @field_validator("token")
    @classmethod
    def _token_is_a_secret(cls, value: str) -> str:
        """A blank or short token would pass every check and guard nothing."""
        if value and (len(value) < MIN_TOKEN_LENGTH or any(c.isspace() for c in value)):
            raise ValueError(
                f"the web token must be at least {MIN_TOKEN_LENGTH} characters with no spaces "
                f"(this one has {len(value)}): make one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
        return value

    @model_validator(mode="after")
    def _listen_is_safe(self) -> WebConfig:
        if self.listen:
            from edge.web.address import check_web_config

            check_web_config(self.listen, self.token)
        return self


class MqttConfig(_Section):
    url: str = Field("", description="mqtt://host[:1883] or mqtts://host[:8883]; empty: off")
    device_id: str = Field("", description="this device in topics; empty: the hostname")
    client_id: str = Field("", description="the MQTT client id; empty: emotion-edge-<device>")
    topic_prefix: str = "emotion-edge"
    discovery: bool = Field(True, description="announce the device to Home Assistant")
    discovery_prefix: str = "homeassistant"

    @field_validator("device_id", "topic_prefix", "discovery_prefix")
    @classmethod
    def _topic_levels(cls, value: str, info) -> str:
        """MQTT topic levels: no wildcards, no empty level (nothing would ever arrive)."""
        if not value and info.field_name == "device_id":
            return value
        levels = value.strip("/").split("/")
        if any(c in value for c in "+#\0") or not all(levels):
            raise ValueError(f"{value!r} is not a usable MQTT topic: no '+', '#' or empty levels")
        return value

    username: str = Field("", description="the password comes from EMOTION_EDGE_MQTT_PASSWORD")
    ca_file: str = Field("", description="mqtts: the CA that signed the broker's certificate")
    cert_file: str = Field("", description="mqtts: this device's client certificate")
    key_file: str = Field("", description="mqtts: the client certificate's key")
    state_interval: float = Field(30.0, gt=0, description="seconds between state updates")
    hold_s: float = Field(1.0, ge=0, description="a new emotion must hold this long to count")
    buffer_mb: float = Field(20.0, gt=0, description="events kept on disk while offline")
    spool: str = Field("mqtt-spool.sqlite", description="where they are kept")
    max_age_s: float = Field(
        0.0, ge=0, description="events older than this are dropped unsent, counted; 0: keep all"
    )
    keepalive: int = Field(
        30, ge=5, le=3600, description="seconds; the broker's last will waits 1.5x"
    )

    @model_validator(mode="after")
    def _url_is_usable(self) -> MqttConfig:
        if self.url:
            from edge.broker import parse_url

            parse_url(self.url)
        return self


class RunLimits(_Section):
    max_frames: int = Field(0, ge=0, description="0: no limit")
    duration: float = Field(0.0, ge=0, description="seconds; 0: no limit")


FacePrivacy = Literal["show", "blur", "hide"]


class PrivacyConfig(_Section):
    faces: FacePrivacy = Field(
        "show",
        description="in every image that leaves the process (stream, recordings, uploads' "
        "answers, screens): show, blur (pixelated) or hide faces; labels stay",
    )
    masks: list[tuple[float, float, float, float]] = Field(
        default_factory=list,
        description="[x, y, w, h] rectangles in frame fractions: faces centred there are "
        "not analysed, and the area is black in every image",
    )
    edge_band: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="with faces blurred or hidden, the share of the frame's width obscured "
        "along its left and right sides (top and bottom of a portrait frame): a face cut "
        "by the edge is out of the detector's reach (docs/privacy.md); 0 turns it off",
    )

    notice: str = Field(
        "Emotion recognition in use",
        max_length=80,
        description="a line drawn on every picture that leaves (stream, screen, recordings, "
        "annotated answers) and shown on the web page: the EU AI Act (Art. 50(3)) asks "
        'deployers to tell people (docs/privacy.md); "" turns it off',
    )

    @field_validator("masks")
    @classmethod
    def _inside_the_frame(cls, masks):
        for mask in masks:
            x, y, w, h = mask
            if not (0 <= x < 1 and 0 <= y < 1 and w > 0 and h > 0) or x + w > 1 or y + h > 1:
                raise ValueError(
                    f"mask {list(mask)} is not inside the frame: [x, y, w, h] are fractions "
                    "of the frame, 0 <= x, y and x + w, y + h <= 1"
                )
        return masks

    @property
    def active(self) -> bool:
        return self.obscures_faces or bool(self.masks)

    @property
    def obscures_faces(self) -> bool:
        """Faces are blurred or hidden: and so is wherever one may be (edge/privacy.py)."""
        return self.faces != "show"


class RunConfig(_Section):
    """Everything a run needs; `source_for_detector` makes `lores_width` concrete."""

    source: SourceConfig = SourceConfig()
    detector: DetectorConfig = DetectorConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    tracking: TrackingConfig = TrackingConfig()
    output: OutputConfig = OutputConfig()
    web: WebConfig = WebConfig()
    mqtt: MqttConfig = MqttConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    run: RunLimits = RunLimits()


def lores_width(config: RunConfig) -> int:
    """The Pi camera's detection stream width: as configured, else 320, or none
    (the full image) when tiles look for far faces: a 3x3 tile of a 320-px
    stream leaves a face 2.5 m away a dozen pixels (docs/distance.md)."""
    if config.source.lores_width is not None:
        return config.source.lores_width
    tiles = config.detector.name == "mediapipe" and config.detector.tiles > 1
    return 0 if tiles else 320


def describe_validation_error(exc: ValidationError) -> str:
    """'output.display: Input should be ...; x: unknown key' on one line."""
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; `emotion-edge run --help` lists them)"
        parts.append(f"{key}: {message}" if key else message)
    return "; ".join(parts)


def load_config(
    path: Path | str | None,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> RunConfig:
    """The config file (or the defaults) with `overrides` ('section.key': value) applied.

    A bad value is blamed on where it came from: the file, or the command-line
    option (`flags` names each override's option, e.g. "--max-faces").
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except OSError as exc:  # a folder, no permission, an I/O error
            raise ConfigError(
                f"config file {path} cannot be read ({exc.strerror or exc}): "
                "give a readable TOML file"
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        raw[section][key] = value
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        given = overrides or {}
        from_options = [e for e in exc.errors() if ".".join(str(p) for p in e["loc"][:2]) in given]
        if from_options and len(from_options) == len(exc.errors()):
            key = ".".join(str(p) for p in from_options[0]["loc"][:2])
            option = (flags or {}).get(key, key)
            raise ConfigError(
                f"{option} {given[key]}: {describe_validation_error(exc).split(': ', 1)[1]}"
            ) from None
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None
