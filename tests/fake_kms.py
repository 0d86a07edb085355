"""A stand-in for kms++'s Python bindings (`pykms`), beneath the real
picamera2 DRM preview (previews/drm_preview.py, run unchanged by the tests).

Only what the preview calls, with kms++'s names and results
(github.com/tomba/kmsxx, py/pykms): `Card(path)` and its connectors,
`ResourceManager.reserve_crtc/reserve_overlay_plane/reserve_plane` (None when
nothing fits), `DumbFramebuffer` (a real mappable fd: a memfd), and
`AtomicReq.commit_sync()`, which returns a negative errno and raises nothing:
picamera2 ignores the result, so a refused commit (another process is DRM
master: a desktop) shows nothing and says nothing. `Screens` sets the scene:
which cards exist, what is plugged in where, whether the outputs have an
overlay plane, and whether a desktop holds the screen.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import types
from dataclasses import dataclass, field

EACCES = 13


class PixelFormat(enum.Enum):
    RGB888 = "RG24"
    BGR888 = "BG24"
    XRGB8888 = "XR24"
    XBGR8888 = "XB24"
    ABGR8888 = "AB24"
    YUV420 = "YU12"
    YVU420 = "YV12"
    NV12 = "NV12"
    YUYV = "YUYV"
    YVYU = "YVYU"


class PlaneType(enum.IntEnum):
    Overlay = 0
    Primary = 1
    Cursor = 2


@dataclass
class Screens:
    """The machine's cards: {"/dev/dri/card1": {"HDMI-A-1": True}} (connector: connected)."""

    cards: dict[str, dict[str, bool]] = field(
        default_factory=lambda: {"/dev/dri/card0": {}, "/dev/dri/card1": {"HDMI-A-1": True}}
    )
    overlay_planes: bool = True
    desktop_master: bool = False  # another process (a compositor) is DRM master
    commits: list = field(default_factory=list)  # (card, connector, planes) of each commit


SCREENS = Screens()


class Mode:
    def __init__(self, width: int = 1920, height: int = 1080):
        self.hdisplay, self.vdisplay = width, height


class Connector:
    def __init__(self, card: Card, name: str, connected: bool):
        self.card, self.fullname, self._connected = card, name, connected

    def connected(self) -> bool:
        return self._connected

    def get_default_mode(self) -> Mode:
        return Mode()


class Card:
    """kms++ `Card(path)`; without a path the first card with connectors
    (kms++ src/card.cpp), as older picamera2 releases open it."""

    def __init__(self, path: str = ""):
        if not path:
            path = next((p for p, c in sorted(SCREENS.cards.items()) if c), "")
        if path not in SCREENS.cards:
            raise ValueError(f"No such file or directory opening {path}")
        self.path = path
        self.connectors = [Connector(self, n, c) for n, c in SCREENS.cards[path].items()]


class Crtc:
    def __init__(self, connector: Connector):
        self.connector = connector


class Plane:
    def __init__(self, kind: PlaneType):
        self.kind, self.props = kind, {}

    def set_prop(self, name: str, value) -> None:
        self.props[name] = value


class ResourceManager:
    def __init__(self, card: Card):
        self.card = card
        self._overlays = 2 if SCREENS.overlay_planes else 0

    def reserve_connector(self, name: str = "") -> Connector | None:
        """The first connected connector of this card (what older picamera2 asked for)."""
        return next((c for c in self.card.connectors if c.connected()), None)

    def reserve_crtc(self, connector: Connector | None) -> Crtc | None:
        return Crtc(connector) if connector is not None and connector.connected() else None

    def reserve_overlay_plane(self, crtc: Crtc | None, format=None) -> Plane | None:
        if crtc is None or self._overlays == 0:
            return None
        self._overlays -= 1
        return Plane(PlaneType.Overlay)

    def reserve_plane(self, crtc: Crtc | None, type=PlaneType.Primary, format=None) -> Plane | None:
        return Plane(type) if crtc is not None else None


class DumbFramebuffer:
    def __init__(self, card: Card, width: int, height: int, fourcc: str):
        self.width, self.height, self.format = width, height, fourcc
        self._fd = os.memfd_create("dumb-fb")
        os.ftruncate(self._fd, width * height * 4)

    def fd(self, plane: int) -> int:
        return self._fd

    def __del__(self):
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)


class DmabufFramebuffer:
    def __init__(self, card, width, height, fmt, fds, strides, offsets):
        self.width, self.height = width, height


class AtomicReq:
    def __init__(self, card: Card):
        self.card, self.planes = card, []

    def add_plane(self, plane, fb, crtc, src=None, dst=None) -> None:
        self.planes.append((plane.kind, fb, crtc))

    def commit_sync(self, allow_modeset: bool = False) -> int:
        if SCREENS.desktop_master:
            return -EACCES  # not DRM master; picamera2 does not look
        connector = self.planes[0][2].connector.fullname if self.planes else None
        SCREENS.commits.append((self.card.path, connector, [p[0] for p in self.planes]))
        return 0


def install(monkeypatch, screens: Screens | None = None) -> Screens:
    """`pykms` in sys.modules (and no pure-Python `kms`, so picamera2 takes pykms)."""
    global SCREENS
    SCREENS = screens or Screens()
    module = types.ModuleType("pykms")
    for name in (
        "Card",
        "ResourceManager",
        "DumbFramebuffer",
        "DmabufFramebuffer",
        "AtomicReq",
        "PixelFormat",
        "PlaneType",
    ):
        setattr(module, name, getattr(sys.modules[__name__], name))
    monkeypatch.setitem(sys.modules, "pykms", module)
    monkeypatch.setitem(sys.modules, "kms", None)
    return SCREENS
