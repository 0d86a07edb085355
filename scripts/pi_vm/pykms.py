"""kms++'s `pykms` as far as importing picamera2 needs it, for the
`make pi-vm-check` guest only (Debian packages no kms++ bindings; Raspberry
Pi OS has python3-kms++).

picamera2 0.3.38 imports its DRM preview with the package
(previews/__init__.py), and previews/drm_preview.py imports `kms` or else
`pykms` at import time and reads `PixelFormat` members in its class body
(`DrmPreview.FMT_MAP`). Nothing else is used unless a DRM preview starts;
the guest draws on the console instead, and `Card()` says so if anything
tries. (PyPI's `kms` is an unrelated package: never install it for this.)
"""

import enum


class PixelFormat(enum.Enum):  # kms++'s fourcc names for the formats FMT_MAP lists
    RGB888 = "RG24"
    BGR888 = "BG24"
    XRGB8888 = "XR24"
    XBGR8888 = "XB24"
    ABGR8888 = "AB24"
    ARGB8888 = "AR24"
    YUV420 = "YU12"
    YVU420 = "YV12"
    NV12 = "NV12"
    NV21 = "NV21"
    YUYV = "YUYV"
    YVYU = "YVYU"
    UYVY = "UYVY"
    VYUY = "VYUY"


class PlaneType(enum.IntEnum):
    Overlay = 0
    Primary = 1
    Cursor = 2


class Card:
    def __init__(self, path: str = "") -> None:
        raise OSError(
            f"no kms++ in the pi-vm guest (pykms stand-in): cannot open {path or 'a card'}"
        )
