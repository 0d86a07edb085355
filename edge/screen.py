"""Which screen this machine offers: a desktop window, the console's screen
through DRM/KMS or its framebuffer, or none, decided from what the kernel and
systemd say, never from other processes.

A Pi is three different machines here. Headless (no HDMI cable, or the
screen off at boot), the kernel reports no connected connector, and picamera2's
DRM preview would fail inside its frame thread on the first frame ("Failed to
reserve DRM plane"), leaving the capture waiting forever. Pi OS's desktop
image runs a compositor (labwc, wayfire, X) that holds DRM master, so a
commit from us fails there too, even from SSH or the service where no DISPLAY
is set. Only a console with a connected screen and no desktop can take it.

"A desktop owns this screen" is decided from the boot configuration and
logind, not from the process list: the service runs with
`ProtectProc=invisible`, which hides every other user's process, and it may
start before the desktop does (logind cannot hand labwc a device we hold).
A machine that boots to a desktop (`default.target` is `graphical.target`
and a display manager is enabled, as on Pi OS Desktop) never has its screen
taken, whether the desktop is up yet or not.

Every path is read under `ROOT`, which tests point at a folder of their own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/")

# Programs that hold DRM master while a desktop runs (the process name in
# /proc/PID/comm, which the kernel cuts to 15 characters). Seen only where
# /proc shows other users' processes: from a shell, not from the service.
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

# Where systemd looks for the default target, the admin's choice first
# (systemd.special(7), `systemctl set-default` writes the first).
UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")


@dataclass(frozen=True)
class Connector:
    """A display output: its kernel name (card1-HDMI-A-1), whether a screen is
    attached, and the first mode the kernel lists (the screen's preferred one)."""

    name: str
    connected: bool = True
    size: tuple[int, int] | None = None  # None: the kernel lists no mode

    @property
    def card(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def kms_name(self) -> str:
        """The name kms++ and picamera2's `device=` use: HDMI-A-1, DSI-1."""
        return self.name.split("-", 1)[1]


def _sys_drm(root: Path | None) -> Path:
    return (root or ROOT) / "sys/class/drm"


def _parse_size(text: str, sep: str = "x") -> tuple[int, int] | None:
    match = re.fullmatch(rf"(\d+){sep}(\d+)[ip]?", text.strip())
    return (int(match[1]), int(match[2])) if match else None


def cards(root: Path | None = None) -> dict[str, list[Connector]]:
    """Every DRM card, in kernel order (card0, card1, ...), with its connectors.

    A Pi 5 has a render-only card (v3d, no connectors), the HDMI card (vc4)
    and one for DSI/DPI/composite (rp1): a screen can be on any but the first.
    """
    sys_drm = _sys_drm(root)
    found: dict[str, list[Connector]] = {}
    names = [p.name for p in sys_drm.glob("card*") if re.fullmatch(r"card\d+", p.name)]
    for card in sorted(names, key=lambda name: int(name[4:])):
        connectors = []
        for folder in sorted(sys_drm.glob(f"{card}-*")):
            try:
                connected = (folder / "status").read_text().strip() == "connected"
                modes = (folder / "modes").read_text().split() if connected else []
            except OSError:
                continue
            connectors.append(
                Connector(folder.name, connected, _parse_size(modes[0]) if modes else None)
            )
        found[card] = connectors
    return found


def connected_outputs(root: Path | None = None) -> list[Connector]:
    """The connectors with a screen attached, as the kernel sees them now."""
    return [c for connectors in cards(root).values() for c in connectors if c.connected]


def kms_default_card(root: Path | None = None) -> str | None:
    """The card `pykms.Card()` opens when given no path: the first one with
    connectors (kms++ `src/card.cpp`, `Card::Card("")`), which is what older
    picamera2 DRM previews use whatever is plugged in (picamera2 issue #995)."""
    return next((card for card, connectors in cards(root).items() if connectors), None)


def running_compositor(root: Path | None = None) -> str | None:
    """The name of a running desktop compositor, where /proc lets us see it."""
    for comm in ((root or ROOT) / "proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the process ended while we looked
            continue
        if name in COMPOSITORS:
            return name
    return None


def _unit_link(root: Path, unit: str) -> str | None:
    """What a unit name links to (its file name), in systemd's search order."""
    for folder in UNIT_DIRS:
        path = root / folder / unit
        if path.is_symlink():
            return Path(os.readlink(path)).name
        if path.exists():
            return unit
    return None


def boots_to_desktop(root: Path | None = None) -> str | None:
    """The display manager this machine boots into, if it does: the default
    target is graphical and a display manager is enabled (Debian enables one
    by linking display-manager.service to it; `raspi-config` "boot to console"
    sets the default target to multi-user instead)."""
    root = root or ROOT
    if _unit_link(root, "default.target") != "graphical.target":
        return None
    manager = _unit_link(root, "display-manager.service")
    return manager.removesuffix(".service") if manager else None


def graphical_session(root: Path | None = None) -> str | None:
    """The type of an active graphical logind session (wayland, x11), if any;
    logind's state files under /run are readable by every user."""
    for session in sorted(((root or ROOT) / "run/systemd/sessions").glob("*")):
        try:
            fields = dict(
                line.split("=", 1) for line in session.read_text().splitlines() if "=" in line
            )
        except (OSError, ValueError):
            continue
        if fields.get("TYPE") in ("wayland", "x11", "mir") and fields.get("ACTIVE") == "1":
            return fields["TYPE"]
    return None


def desktop_owner(root: Path | None = None) -> str | None:
    """Why a desktop owns the screen ("the desktop (lightdm)"), or None."""
    if manager := boots_to_desktop(root):
        return f"this machine boots to a desktop ({manager})"
    if session := graphical_session(root):
        return f"a {session} desktop session is active"
    if compositor := running_compositor(root):
        return f"the desktop ({compositor}) holds the screen"
    return None


def drm_unavailable(root: Path | None = None) -> str | None:
    """Why the console's screen cannot be drawn on now, or None if it can."""
    if not cards(root):
        return "this machine has no DRM/KMS display device"
    if not connected_outputs(root):
        return "no screen is connected (plug in HDMI before boot, or it stays off)"
    if owner := desktop_owner(root):
        return owner
    return None


def preview_device(root: Path | None = None) -> str | None:
    """The connector picamera2's DRM preview must be told to use (`device=`),
    or None where its default finds the screen: the screen is on the card
    kms++ opens by default. A Pi 5 with only a DSI or composite screen has it
    on another card."""
    outputs = connected_outputs(root)
    if not outputs or outputs[0].card == kms_default_card(root):
        return None
    return outputs[0].kms_name


@dataclass(frozen=True)
class Framebuffer:
    """The fbdev emulation of a DRM card (/dev/fbN): what the console draws on."""

    device: Path
    size: tuple[int, int]
    bits_per_pixel: int
    stride: int  # bytes per row


def framebuffer(connector: Connector | None = None, root: Path | None = None) -> Framebuffer | None:
    """The framebuffer of the card the screen is on (the first connected
    screen unless one is given), with its current geometry; None if the card
    has none (fbdev emulation off) or sysfs does not say."""
    root = root or ROOT
    connector = connector or next(iter(connected_outputs(root)), None)
    if connector is None:
        return None
    card_device = (_sys_drm(root) / connector.card / "device").resolve()
    for folder in sorted((root / "sys/class/graphics").glob("fb[0-9]*")):
        if (folder / "device").resolve() != card_device:
            continue
        try:
            size = _parse_size((folder / "virtual_size").read_text(), ",")
            bpp = int((folder / "bits_per_pixel").read_text())
            stride = int((folder / "stride").read_text())
        except (OSError, ValueError):
            return None
        if size is None:
            return None
        return Framebuffer(root / "dev" / folder.name, size, bpp, stride)
    return None


def screen_size(root: Path | None = None) -> tuple[int, int] | None:
    """The size the connected screen runs at now. Neither we nor picamera2
    set a mode: the CRTC keeps the one the console chose (its framebuffer's
    size), which is the first listed mode only unless `video=` says otherwise."""
    outputs = connected_outputs(root)
    if not outputs:
        return None
    if fb := framebuffer(outputs[0], root):
        return fb.size
    return outputs[0].size


def preview_window(
    camera_size: tuple[int, int], fullscreen: bool, root: Path | None = None
) -> tuple[int, int, int, int] | None:
    """Where the DRM preview goes (x, y, width, height) on the connected screen.

    Full screen by default (picamera2 letterboxes to keep the aspect ratio);
    `fullscreen = false` keeps the camera's own size, centred. None when the
    screen's size is unknown: picamera2's default 640x480 at the corner.
    """
    size = screen_size(root)
    if size is None:
        return None
    screen_w, screen_h = size
    if fullscreen:
        return (0, 0, screen_w, screen_h)
    width, height = min(camera_size[0], screen_w), min(camera_size[1], screen_h)
    return ((screen_w - width) // 2, (screen_h - height) // 2, width, height)
