"""Which screen this machine offers: a desktop window, the HDMI output through
DRM/KMS, or none, decided from what the kernel and the running processes say.

A Pi is three different machines here. Headless (no HDMI cable, or the
screen off at boot), the kernel reports no connected connector, and picamera2's
DRM preview would fail inside its frame thread on the first frame ("Failed to
reserve DRM plane"), leaving the capture waiting forever. Pi OS's desktop
image runs a compositor (labwc, wayfire, X) that holds DRM master, so the
same commit fails there too, even from SSH or the service where no DISPLAY is
set. Only a console with a connected screen and no compositor can take DRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Where the kernel describes the DRM connectors and the processes; tests point
# them at folders of their own.
SYS_DRM = Path("/sys/class/drm")
PROC = Path("/proc")

# Programs that hold DRM master while a desktop runs (the process name in
# /proc/PID/comm, which the kernel cuts to 15 characters).
COMPOSITORS = frozenset(
    {
        "labwc",  # Pi OS Bookworm since late 2024, Trixie
        "wayfire",  # Pi OS Bookworm's first Wayland desktop
        "Xorg",  # Pi OS with X11, older images
        "weston",
        "sway",
        "cage",  # kiosk compositor
        "mutter",
        "gnome-shell",
        "kwin_wayland",
        "kwin_x11",
    }
)


@dataclass(frozen=True)
class Connector:
    """A connected output: its kernel name (card1-HDMI-A-1) and preferred mode."""

    name: str
    size: tuple[int, int] | None  # None: the kernel lists no mode


def connected_outputs(sys_drm: Path | None = None) -> list[Connector]:
    """The connectors with a screen attached, as the kernel sees them now."""
    outputs = []
    for status in sorted((sys_drm or SYS_DRM).glob("card*-*/status")):
        try:
            if status.read_text().strip() != "connected":
                continue
            modes = (status.parent / "modes").read_text().split()
        except OSError:
            continue
        size = None
        if modes and "x" in modes[0]:
            width, _, height = modes[0].partition("x")
            if width.isdigit() and height.rstrip("ip").isdigit():
                size = (int(width), int(height.rstrip("ip")))
        outputs.append(Connector(status.parent.name, size))
    return outputs


def running_compositor(proc: Path | None = None) -> str | None:
    """The name of a running desktop compositor (which holds DRM master), if any."""
    for comm in (proc or PROC).glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the process ended while we looked
            continue
        if name in COMPOSITORS:
            return name
    return None


def drm_unavailable(sys_drm: Path | None = None, proc: Path | None = None) -> str | None:
    """Why the DRM preview cannot show on this machine now, or None if it can."""
    if not any((sys_drm or SYS_DRM).glob("card*")):
        return "this machine has no DRM/KMS display device"
    if not connected_outputs(sys_drm):
        return "no screen is connected (plug in HDMI before boot, or it stays off)"
    if compositor := running_compositor(proc):
        return f"the desktop ({compositor}) holds the screen"
    return None


def preview_window(
    camera_size: tuple[int, int], fullscreen: bool, sys_drm: Path | None = None
) -> tuple[int, int, int, int] | None:
    """Where the DRM preview goes (x, y, width, height) on the connected screen.

    Full screen by default (picamera2 letterboxes to keep the aspect ratio);
    `fullscreen = false` keeps the camera's own size, centred. None when the
    screen's mode is unknown: picamera2's default 640x480 at the corner.
    """
    outputs = connected_outputs(sys_drm)
    if not outputs or outputs[0].size is None:
        return None
    screen_w, screen_h = outputs[0].size
    if fullscreen:
        return (0, 0, screen_w, screen_h)
    width, height = min(camera_size[0], screen_w), min(camera_size[1], screen_h)
    return ((screen_w - width) // 2, (screen_h - height) // 2, width, height)
