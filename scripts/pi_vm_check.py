#!/usr/bin/env python3
"""`make pi-vm-check`: a Raspberry Pi in a box, and the release check of the service.

Every service test in `make test` runs against stand-ins (a fake
NOTIFY_SOCKET, /proc, camera). This boots a whole machine instead: Debian
Bookworm (Raspberry Pi OS is Bookworm plus Raspberry Pi's packages) with its
own kernel, systemd as PID 1, journald, udev, a V4L2 camera (v4l2loopback fed
the demo clip) and a DRM screen (QEMU's std VGA), installs the checkout as the
README tells a Pi user (`sudo edge/systemd/install.sh`), and then does to it
what a year on a shelf does:

    boot      power on: the service is active and events flow
    sandbox   systemd-analyze security <= 2.0; camera and state reached inside it
    hang      the main process frozen: the watchdog restarts it
    unplug    the camera gone for 30 s and back: waited for, no restart
    powercut  QEMU killed mid-recording: it comes back by itself, nothing lost
    desktop   a compositor started before and after the service keeps the screen

Each prints `pi-vm-check: <name>: passed|FAILED (<figures>)`, then
`pi-vm-check: passed` when all pass (exit 0), else exit 1. A missing tool, no
disk space or a guest that does not boot is one line and exit 2, with nothing
left running (QEMU is killed by its PID).

The disk image (debootstrap, about 4 minutes) and the wheels the install uses
(pip download, on the host: the guest reaches no package index itself) are
cached under build/pi-vm; a second run reuses them. Building the image needs
root (debootstrap, chroot). KVM is used where it works, else QEMU's TCG
(a nested VM's KVM often aborts QEMU: it is probed first).

    sudo python3 scripts/pi_vm_check.py            # make pi-vm-check
    python3 scripts/pi_vm_check.py --only boot,hang
    python3 scripts/pi_vm_check.py --keep          # leave the guest running after

Needs: apt-get install qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PI_VM_BUILD", ROOT / "build" / "pi-vm"))
GUEST_FILES = Path(__file__).resolve().parent / "pi_vm"
SUITE = "bookworm"
MIRROR = os.environ.get("PI_VM_MIRROR", "http://deb.debian.org/debian")
DEMO_CLIP = ROOT / "assets" / "demo" / "faces.mp4"
# What a Raspberry Pi OS Lite image has that the service relies on (systemd,
# udev, dbus and logind, Python 3.11 with venv), the guest's kernel, SSH for
# the check to drive it, the camera (v4l2loopback built by DKMS for Debian's
# 6.1 kernel, which has neither vimc nor vkms; ffmpeg feeds it) and the
# desktop scenario's compositor (weston, seatd, chvt from kbd).
PACKAGES = [
    *("systemd", "systemd-sysv", "udev", "dbus", "libpam-systemd", "linux-image-amd64", "kmod"),
    *("openssh-server", "ca-certificates", "python3", "python3-venv", "python3-pip"),
    *("iproute2", "procps", "psmisc", "libxcb1", "libegl1", "libgles2", "libgl1", "libglib2.0-0"),
    *("ffmpeg", "v4l2loopback-dkms", "linux-headers-amd64", "weston", "seatd", "kbd"),
]
IMAGE_SIZE = "8G"
SERVICE = "emotion-edge"
STATE = f"/var/lib/{SERVICE}"
CONFIG = f"/etc/{SERVICE}/config.toml"
# Where the checkout goes in the guest: a Pi user's clone in their home.
CHECKOUT = "/home/pi/emotion-edge"
WHEELS = "/var/cache/pi-vm/wheels"
TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
INSTALL_HINT = "apt-get install " + " ".join(sorted(set(TOOLS.values())))


class CheckError(Exception):
    """The check itself cannot go on: one line saying what and how to fix it."""


class Failed(Exception):
    """A scenario's promise did not hold: one line with the figures."""


def say(message: str) -> None:
    print(f"pi-vm-check: {message}", flush=True)


def run(cmd: list[str], log: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """A host command; its output goes to `log` (appended) when given."""
    if log is None:
        return subprocess.run(cmd, check=True, **kwargs)
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        except subprocess.CalledProcessError as exc:
            raise CheckError(f"{cmd[0]} failed (exit {exc.returncode}): see {log}") from None


# --- the image ----------------------------------------------------------------


def image_key() -> str:
    """What the cached image was built from: rebuilt when any of it changes."""
    digest = hashlib.sha256()
    digest.update(" ".join([SUITE, MIRROR, IMAGE_SIZE, *PACKAGES]).encode())
    for path in [DEMO_CLIP, *sorted(GUEST_FILES.iterdir()), Path(__file__)]:
        if path.name == Path(__file__).name:
            # the recipe (configure_root) is part of the key; the scenarios are not
            text = path.read_text()
            digest.update(
                text[text.index("# --- the image") : text.index("# --- the guest")].encode()
            )
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check_tools() -> None:
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise CheckError(f"{tool} is missing (package {package}): {INSTALL_HINT}")


def build_image() -> tuple[dict[str, Path], bool]:
    """The cached Bookworm disk, kernel and initrd, and whether they were
    built now (when missing or stale)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    files = {name: BUILD / name for name in ("base.img", "vmlinuz", "initrd.img", "key")}
    key_file = BUILD / "base.key"
    key = image_key()
    cached = all(p.exists() for p in files.values()) and key_file.exists()
    if cached and key_file.read_text().strip() == key:
        return files, False
    if os.geteuid() != 0:
        raise CheckError(
            "building the Bookworm image needs root (debootstrap, chroot): "
            "run sudo make pi-vm-check (later runs reuse build/pi-vm/base.img)"
        )
    free_gb = shutil.disk_usage(BUILD).free / 1e9
    if free_gb < 10:
        raise CheckError(f"{free_gb:.1f} GB free under {BUILD}: the image needs 10 GB; free some")
    log = BUILD / "build.log"
    log.write_text("")
    rootfs = BUILD / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    say(f"building a Debian {SUITE} image (once; about 5 minutes; log: {log})")
    started = time.monotonic()
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
         str(rootfs), MIRROR],
        log,
    )  # fmt: skip
    if not files["key"].exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(files["key"])], log)
    configure_root(rootfs, files["key"].with_suffix(".pub").read_text(), log)
    boot = rootfs / "boot"
    shutil.copy(max(boot.glob("vmlinuz-*")), files["vmlinuz"])
    shutil.copy(max(boot.glob("initrd.img-*")), files["initrd.img"])
    partial = BUILD / "base.img.partial"
    partial.unlink(missing_ok=True)
    run(
        ["mkfs.ext4", "-q", "-F", "-L", "pi-root", "-d", str(rootfs), str(partial), IMAGE_SIZE], log
    )
    partial.rename(files["base.img"])
    key_file.write_text(key + "\n")
    shutil.rmtree(rootfs)
    say(f"image built in {time.monotonic() - started:.0f} s: {files['base.img']}")
    return files, True


def configure_root(rootfs: Path, public_key: str, log: Path) -> None:
    """A Pi OS Lite-like machine: hostname raspberrypi, user pi, DHCP, SSH
    for the check, the camera feeder enabled, the desktop installed but off."""
    (rootfs / "etc/hostname").write_text("raspberrypi\n")
    (rootfs / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 raspberrypi\n")
    (rootfs / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").write_text("nameserver 10.0.2.3\n")  # QEMU's user network
    network = rootfs / "etc/systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    (network / "10-wired.network").write_text("[Match]\nName=en*\n\n[Network]\nDHCP=yes\n")
    ssh = rootfs / "root/.ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(public_key)
    pi_vm = rootfs / "opt/pi-vm"
    pi_vm.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO_CLIP, pi_vm / DEMO_CLIP.name)
    for unit in GUEST_FILES.glob("*.service"):
        shutil.copy(unit, rootfs / "etc/systemd/system" / unit.name)
    commands = (
        "useradd --create-home --groups video,render,input,audio --shell /bin/bash pi || "
        "useradd --create-home --groups video,input,audio --shell /bin/bash pi; "
        "systemctl enable systemd-networkd pi-camera.service; "
        "systemctl set-default multi-user.target; "
        # a fresh machine-id at first boot, as a flashed Pi image gets
        ": > /etc/machine-id; rm -f /var/lib/dbus/machine-id; "
        # the journal kept on disk: the check reads a boot's log after a power cut
        "mkdir -p /var/log/journal"
    )
    run(["chroot", str(rootfs), "sh", "-c", commands], log)


# --- the guest ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_works(files: dict[str, Path]) -> bool:
    """Whether QEMU boots a kernel under KVM here: a nested VM's /dev/kvm can
    exist and still abort QEMU ("failed to set MSR 0x10a") or hang it."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
           "-no-reboot", "-kernel", str(files["vmlinuz"]), "-append", "console=ttyS0 panic=-1",
           "-serial", "stdio", "-monitor", "none"]  # fmt: skip
    probe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    os.set_blocking(probe.stdout.fileno(), False)
    seen, deadline = b"", time.monotonic() + 10
    try:
        while time.monotonic() < deadline and probe.poll() is None:
            seen += probe.stdout.read() or b""
            if b"Linux version" in seen:
                return True
            time.sleep(0.2)
        return False
    finally:
        probe.kill()
        probe.wait()


class Guest:
    """One QEMU machine on a copy-on-write disk over the cached image, driven
    over SSH on a loopback port. Power is QEMU's process: `cut()` is SIGKILL."""

    def __init__(self, files: dict[str, Path], disk: Path, accel: str, log: Path) -> None:
        self.files, self.disk, self.accel, self.log = files, disk, accel, log
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.powered_at = 0.0
        self.boots = 0

    def power_on(self, timeout: float = 300) -> float:
        """Boots from the disk; seconds until SSH answers."""
        self.port = free_port()
        self.boots += 1
        console = self.log.with_name(f"console-{self.boots}.log")
        # TCG's default CPU (qemu64) lacks the SSE4/AVX the wheels' kernels use
        # (SIGILL at the first inference); `max` emulates them (QEMU >= 7.2: AVX2)
        cpu = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else ["-accel", "tcg"]
        cpu += [] if self.accel == "kvm" else ["-cpu", "max"]
        cmd = ["qemu-system-x86_64", *cpu, "-smp", "2", "-m", "2048",
               "-kernel", str(self.files["vmlinuz"]), "-initrd", str(self.files["initrd.img"]),
               "-append", "console=ttyS0 root=/dev/vda rw",
               "-drive", f"file={self.disk},if=virtio,format=qcow2",
               "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
               "-device", "virtio-net-pci,netdev=net0", "-vga", "std", "-display", "none",
               "-serial", f"file:{console}", "-monitor", "none"]  # fmt: skip
        with self.log.open("a") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.powered_at = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise CheckError(f"QEMU exited with {self.process.returncode}: see {self.log}")
            if self.ssh("true", timeout=10, check=False).returncode == 0:
                return time.monotonic() - self.powered_at
            if time.monotonic() - self.powered_at > timeout:
                raise CheckError(f"the guest did not boot within {timeout:.0f} s: see {console}")
            time.sleep(1)

    def ssh(
        self, script: str, timeout: float = 120, check: bool = True, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess:
        """`script` run by bash as root in the guest."""
        key = self.files["key"]
        cmd = ["ssh", "-q", "-i", str(key), "-p", str(self.port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "ConnectTimeout=5", "root@127.0.0.1"]  # fmt: skip
        if stdin is None:
            cmd += ["bash", "-c", shlex.quote(f"set -euo pipefail; {script}")]
        else:
            cmd += [script]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            if check:
                raise CheckError(
                    f"the guest did not answer within {timeout:.0f} s: {script[:60]}"
                ) from None
            return subprocess.CompletedProcess(cmd, 255, b"", b"timeout")
        if check and done.returncode != 0:
            err = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise Failed(f"`{script[:60]}` exited {done.returncode}: {err[-1] if err else ''}")
        return done

    def out(self, script: str, timeout: float = 120) -> str:
        return self.ssh(script, timeout).stdout.decode(errors="replace").strip()

    def copy_in(self, tar_args: list[str], cwd: Path, dest: str) -> None:
        """Files from the host (tar's arguments under `cwd`) into `dest`."""
        tar = subprocess.run(
            ["tar", "-c", "-C", str(cwd), *tar_args], capture_output=True, check=True
        )
        self.ssh(f"mkdir -p {dest} && tar -x -C {dest}", timeout=600, stdin=tar.stdout)

    def shutdown(self, timeout: float = 180) -> None:
        """A clean power-off (systemctl poweroff), killed if it hangs."""
        self.ssh("systemctl poweroff", timeout=15, check=False)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.cut()
            raise Failed(f"the guest did not power off within {timeout:.0f} s") from None
        self.process = None

    def cut(self) -> None:
        """The power cut: QEMU killed with SIGKILL, by its PID."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def uptime(self) -> float:
        return float(self.out("cut -d' ' -f1 /proc/uptime"))


# --- what the check reads in the guest ----------------------------------------------


def service(guest: Guest) -> dict[str, str]:
    props = "MainPID,NRestarts,ActiveState,SubState,StatusText,ExecMainStartTimestampMonotonic"
    text = guest.out(f"systemctl show {SERVICE} -p {props}")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def snapshots(guest: Guest) -> list[dict]:
    """The service's stats snapshots, each with `wall`: its guest wall-clock
    time (the run's `start` time plus the snapshot's `elapsed_s`)."""
    text = guest.out(f"cat {STATE}/stats*.jsonl 2>/dev/null || true")
    starts, out = {}, []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "start":
            starts[record["run"]] = dt.datetime.fromisoformat(record["t"]).timestamp()
        elif record.get("type") == "stats" and record.get("run") in starts:
            began = starts[record["run"]]
            out.append({**record, "began": began, "wall": began + record["elapsed_s"]})
    return out


def frames_after(guest: Guest, since: float, new_run: bool = False) -> float | None:
    """The guest time of the first snapshot after `since` showing a frame
    processed since then (by the run that was going, or a new one; with
    `new_run`, by a run started after `since` only)."""
    base: dict[str, int] = {}
    for snap in snapshots(guest):
        if new_run and snap["began"] <= since:
            continue
        if snap["wall"] <= since:
            base[snap["run"]] = snap["frames_processed"]
        elif snap["frames_processed"] > base.get(snap["run"], 0):
            return snap["wall"]
    return None


def frames_since(guest: Guest, since: float) -> int:
    """Frames processed after `since`, counted from the newest run's snapshots."""
    every = snapshots(guest)
    snaps = [s for s in every if s["wall"] > since]
    if not snaps:
        return 0
    run = snaps[-1]["run"]
    before = [s["frames_processed"] for s in every if s["run"] == run and s["wall"] <= since]
    return snaps[-1]["frames_processed"] - max(before, default=0)


def events_text(guest: Guest) -> str:
    return guest.out(f"cat {STATE}/events*.jsonl 2>/dev/null || true")


def guest_clock(guest: Guest) -> float:
    return float(guest.out("date +%s.%N"))


def wait_for(what: str, test, timeout: float, every: float = 1.0):
    """`test()`'s first truthy value, or Failed naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = test()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


# --- scenarios -------------------------------------------------------------------


def install(guest: Guest) -> str:
    """The checkout, installed as the README says, configured to record and log stats."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    present = [f for f in files if f and (ROOT / f).exists()]
    list_file = BUILD / "checkout.list"
    list_file.write_text("\n".join(present) + "\n")
    guest.copy_in(["-T", str(list_file)], ROOT, CHECKOUT)
    guest.copy_in(["."], BUILD / "wheels", WHEELS)
    started = time.monotonic()
    done = guest.ssh(
        f"chown -R pi:pi {CHECKOUT} && cd {CHECKOUT} && "
        f"PIP_NO_INDEX=1 PIP_FIND_LINKS={WHEELS} edge/systemd/install.sh",
        timeout=1800, check=False,
    )  # fmt: skip
    guest.log.open("ab").write(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise Failed(f"install.sh exited {done.returncode}: {tail[-1] if tail else ''}")
    seconds = time.monotonic() - started
    # recordings as .mkv (the .mp4 refusal is checked in powercut), stats every second
    guest.ssh(
        f'sed -i -e \'s/^record = ""/record = "rec.mkv"/\' '
        f'-e \'s/^stats = ""/stats = "stats.jsonl"/\' '
        f"-e 's/^stats_interval = .*/stats_interval = 1.0/' {CONFIG} && "
        f"/opt/{SERVICE}/venv/bin/emotion-edge check-config {CONFIG} && "
        f"systemctl restart {SERVICE}"
    )
    return f"install.sh {seconds:.0f} s"


def scenario_boot(guest: Guest) -> str:
    """Power on: the service is active and events flow."""
    guest.shutdown()
    to_ssh = guest.power_on()
    boot_wall = guest_clock(guest) - guest.uptime()
    first = wait_for(
        "a frame event after power-on",
        lambda: _first_frame_of_runs_since(guest, boot_wall),
        timeout=600,
        every=2,
    )
    svc = service(guest)
    if svc["ActiveState"] != "active":
        raise Failed(f"service {svc['ActiveState']} after its first frame event")
    return (
        f"SSH after {to_ssh:.0f} s, first frame event {first:.0f} s after power-on ({guest.accel})"
    )


def _first_frame_of_runs_since(guest: Guest, since: float) -> float | None:
    """The monotonic `t` (seconds since the kernel started) of the first frame
    event of a run whose start line is later than guest time `since`."""
    runs = set()
    for line in events_text(guest).splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "start":
            if dt.datetime.fromisoformat(event["t"]).timestamp() >= since:
                runs.add(event["run"])
        elif event.get("type") == "frame" and event.get("run") in runs:
            return float(event["t"])
    return None


def scenario_sandbox(guest: Guest) -> str:
    """systemd-analyze security <= 2.0 on the running system; camera and state reached."""
    text = guest.out(f"systemd-analyze security {SERVICE} --no-pager | tail -1")
    match = re.search(r"exposure level for \S+: ([\d.]+)", text)
    if not match:
        raise Failed(f"no exposure level in: {text}")
    exposure = float(match.group(1))
    owner = guest.out(f"stat -c %U {STATE}/events.jsonl")
    frames = frames_since(guest, 0)
    camera = guest.out(
        f"ls -l /proc/$(systemctl show -p MainPID --value {SERVICE})/fd "
        "| grep -c /dev/video || true"
    )
    figures = (
        f"exposure {exposure}, events written by {owner}, {frames} frames, camera open {camera}"
    )
    if exposure > 2.0 or owner != SERVICE or frames == 0 or camera == "0":
        raise Failed(figures)
    return figures


def scenario_hang(guest: Guest) -> str:
    """SIGSTOP: the watchdog restarts the service, and it runs again."""
    pid = service(guest)["MainPID"]
    stopped = float(guest.out(f"kill -STOP {pid} && date +%s.%N"))

    def restarted():
        now = service(guest)
        return now["MainPID"] not in ("0", pid) and now["ActiveState"] == "active"

    wait_for("a new process after the watchdog", restarted, timeout=120)
    line = guest.out(
        f"journalctl -u {SERVICE} -o short-unix --no-pager -g 'Watchdog timeout' | tail -1"
    )
    fired = float(line.split()[0]) - stopped if line else float("nan")
    back = wait_for(
        "frames after the restart", lambda: frames_after(guest, stopped, new_run=True), 300
    )
    figures = (
        f"watchdog fired {fired:.1f} s after SIGSTOP, frames again after {back - stopped:.0f} s"
    )
    if not fired <= 16.0:  # WatchdogSec=15, plus a second of timer slack
        raise Failed(figures)
    return figures


def scenario_unplug(guest: Guest) -> str:
    """The camera gone for 30 s and back: waited for, no watchdog restart."""
    before = service(guest)
    guest.ssh("systemctl stop pi-camera")
    # v4l2loopback goes only once the service has let go of the device
    wait_for(
        "the service letting go of /dev/video0",
        lambda: guest.ssh("modprobe -r v4l2loopback", check=False, timeout=20).returncode == 0,
        timeout=60,
    )
    gone = guest_clock(guest)
    time.sleep(30)
    during = service(guest)
    present = guest.out("ls /dev/video* 2>/dev/null || true")
    # the device is back once the feeder's modprobe (ExecStartPre) has run
    returned = float(guest.out("systemctl start pi-camera && date +%s.%N"))
    back = wait_for("frames after the camera returned", lambda: frames_after(guest, returned), 60)
    reopened = guest.out(
        f"journalctl -u {SERVICE} -o short-unix --no-pager -g 'is back after' | tail -1"
    )
    reopened_s = float(reopened.split()[0]) - returned if reopened else float("nan")
    after = service(guest)
    figures = (
        f"status '{during['StatusText']}', restarts {before['NRestarts']}->{after['NRestarts']}, "
        f"camera reopened {reopened_s:.1f} s and frames {back - returned:.1f} s after its "
        f"return (gone {returned - gone:.0f} s)"
    )
    if (
        present
        or "waiting" not in during["StatusText"]
        or after["NRestarts"] != before["NRestarts"]
        or after["MainPID"] != before["MainPID"]
        or back - returned > 5.0
    ):
        raise Failed(figures)
    return figures


def recorded_frames(guest: Guest, pattern: str) -> dict[str, int]:
    """Frames each recording decodes to (the service's own OpenCV in its venv)."""
    script = (
        "import cv2, glob, json, sys\n"
        "counts = {}\n"
        "for path in sorted(glob.glob(sys.argv[1])):\n"
        "    cap, n = cv2.VideoCapture(path), 0\n"
        "    while cap.read()[0]: n += 1\n"
        "    counts[path] = n\n"
        "print(json.dumps(counts))\n"
    )
    text = guest.out(
        f"/opt/{SERVICE}/venv/bin/python -c {shlex.quote(script)} '{pattern}' 2>/dev/null",
        timeout=300,
    )
    return json.loads(text.splitlines()[-1])


def scenario_powercut(guest: Guest) -> str:
    """QEMU killed mid-recording: the service returns by itself, nothing is lost."""
    # .mp4 first: a service refuses it in one line (its index is written on close)
    guest.ssh(
        f"sed -i 's/^record = .*/record = \"rec.mp4\"/' {CONFIG} && systemctl restart {SERVICE}",
        check=False,
    )
    refusal = wait_for(
        "the service's one line refusing rec.mp4",
        lambda: guest.out(f"journalctl -u {SERVICE} --no-pager -o cat -g 'rec.mp4' | tail -1"),
        timeout=120,
    )
    guest.ssh(
        f"sed -i 's/^record = .*/record = \"rec.mkv\"/' {CONFIG} && systemctl restart {SERVICE}"
    )
    started = guest_clock(guest)
    wait_for(
        "300 frames recorded", lambda: frames_since(guest, started) >= 300, timeout=600, every=2
    )
    written = frames_since(guest, started)  # at most a second's frames before the cut
    guest.cut()
    guest.power_on()
    boot_time = guest_clock(guest) - guest.uptime()
    wait_for(
        "the service active again",
        lambda: service(guest)["ActiveState"] == "active" and frames_after(guest, boot_time),
        timeout=600,
        every=2,
    )
    counts = recorded_frames(guest, f"{STATE}/rec*.mkv")
    kept = max(counts.values(), default=0)  # the recording cut, rotated aside at restart
    lines = events_text(guest).splitlines()
    records = [_parsed(line) for line in lines]
    starts = [i for i, r in enumerate(records) if r and _started_after(r, boot_time)]
    restart = starts[0] if starts else len(lines)
    # the line being written when the power went may be torn; no other
    torn = [i for i, r in enumerate(records[:restart]) if r is None]
    figures = (
        f"recording decodes {kept} of ~{written} frames ({kept / max(written, 1):.0%}), "
        f"{len(torn)} torn of {restart} event lines before the cut, "
        f"new run's start line {'appended' if starts else 'MISSING'}; "
        f"rec.mp4 refused: {refusal.split(': ', 1)[-1][:90]}"
    )
    if kept < 0.6 * written or torn not in ([], [restart - 1]) or not starts:
        raise Failed(figures)
    return figures


def _started_after(record: dict, since: float) -> bool:
    if record.get("type") != "start":
        return False
    return dt.datetime.fromisoformat(record["t"]).timestamp() >= since


def _parsed(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def desktop_boot(guest: Guest, order: str) -> str:
    """One boot with weston as the display manager, ordered `order` the service."""
    guest.ssh(
        "mkdir -p /etc/systemd/system/pi-desktop.service.d && "
        f"printf '[Unit]\\n{order}={SERVICE}.service\\n' "
        "> /etc/systemd/system/pi-desktop.service.d/order.conf && "
        "systemctl enable pi-desktop.service && systemctl set-default graphical.target"
    )
    guest.shutdown()
    guest.power_on()
    boot_time = guest_clock(guest) - guest.uptime()
    wait_for("frames after boot", lambda: frames_since(guest, boot_time), timeout=600, every=2)
    time.sleep(10)  # the later of the two has had its chance at the screen
    weston = guest.ssh("systemctl is-active pi-desktop", check=False).stdout.decode().strip()
    weston_card = guest.out(
        "ls -l /proc/$(systemctl show -p MainPID --value pi-desktop)/fd "
        "| grep -c /dev/dri/card || true"
    )
    screen_fds = guest.out(
        f"ls -l /proc/$(systemctl show -p MainPID --value {SERVICE})/fd "
        "| grep -c -e /dev/dri/card -e /dev/fb || true"
    )
    line = guest.out(f"journalctl -b -u {SERVICE} --no-pager -o cat -g 'display auto' | tail -1")
    if weston != "active" or weston_card == "0" or screen_fds != "0" or "headless" not in line:
        raise Failed(
            f"weston {weston} (card open: {weston_card}), service screen fds {screen_fds}, "
            f"log: {line or 'none'}"
        )
    return line.split("display auto: ", 1)[-1].split("; add --web")[0]


def scenario_desktop(guest: Guest) -> str:
    """A compositor started before the service, then after it: it keeps the screen."""
    said = desktop_boot(guest, "Before")
    desktop_boot(guest, "After")
    return f"weston started before and after the service kept the screen; the service: {said}"


SCENARIOS = {
    "boot": scenario_boot,
    "sandbox": scenario_sandbox,
    "hang": scenario_hang,
    "unplug": scenario_unplug,
    "powercut": scenario_powercut,
    "desktop": scenario_desktop,
}


# --- the run -------------------------------------------------------------------


def fetch_wheels(log: Path) -> None:
    """The wheels install.sh needs for the guest (Bookworm's Python 3.11 on
    x86_64, the tested constraints), downloaded once on the host."""
    wheels = BUILD / "wheels"
    constraints = ROOT / "constraints" / "pi-bookworm.txt"
    stamp = wheels / ".key"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    wanted = [*project["project"]["dependencies"], *build, "pip", "wheel"]
    key = hashlib.sha256((constraints.read_text() + "\n".join(wanted)).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key:
        return
    say("downloading the wheels for the guest (once)")
    # Bookworm's glibc is 2.36: every manylinux tag up to it (pip does not
    # widen an explicit --platform itself)
    platforms = [f"--platform=manylinux_2_{minor}_x86_64" for minor in range(17, 37)]
    platforms += ["--platform=manylinux2014_x86_64", "--platform=linux_x86_64"]
    wheels.mkdir(parents=True, exist_ok=True)
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
         *platforms,
         "--constraint", str(constraints), *wanted],
        log,
    )  # fmt: skip
    stamp.write_text(key)


def table(result: dict) -> str:
    """The scenarios' lines as a Markdown table, from a results file."""
    lines = ["| run | scenario | result | figures |", "|---|---|---|---|"]
    for kind in ("first_run", "cached_run"):
        if kind not in result:
            continue
        run_ = result[kind]
        for name, outcome in run_["scenarios"].items():
            verdict = "passed" if outcome["passed"] else "FAILED"
            lines.append(
                f"| {kind.replace('_', ' ')} | {name} | {verdict} | {outcome['figures']} |"
            )
    lines.append("")
    for kind in ("first_run", "cached_run"):
        if kind in result:
            run_ = result[kind]
            built = (
                f", of which the image {run_['image_build_s'] / 60:.1f} min"
                if run_.get("image_build_s")
                else ", the image cached"
            )
            lines.append(
                f"{kind.replace('_', ' ').capitalize()}: {run_['minutes']:.1f} min{built} "
                f"({run_['accel']}, {run_['host']})."
            )
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def summary(result: dict) -> str:
    """One sentence for the README: how long a first and a cached run take."""
    runs = []
    for kind, name in (("first_run", "the first run"), ("cached_run", "a cached run")):
        if kind in result:
            run_ = result[kind]
            verdict = "every scenario passed" if run_["passed"] else "NOT ALL PASSED"
            runs.append(f"{name} {run_['minutes']:.0f} min ({verdict})")
    some = result.get("cached_run") or result.get("first_run")
    return (
        f"Measured on a machine with {some['host']}, under {some['accel'].upper()}: "
        + ", ".join(runs)
        + "."
    )


def write_result(out: Path, outcome: dict) -> None:
    """pi-vm-check.json and .md in `out`: this run as `first_run` (it built
    the image) or `cached_run`, beside the other kind when it is from the
    same commit."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.provenance import provenance

    made = provenance(DEMO_CLIP)
    path = out / "pi-vm-check.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    if result.get("provenance", {}).get("git_commit") != made["git_commit"]:
        result = {}
    kind = "first_run" if outcome.get("image_build_s") else "cached_run"
    result.update({"provenance": made, kind: outcome})
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    (out / "pi-vm-check.md").write_text(table(result))
    say(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenarios (default: all, in order)")
    parser.add_argument("--keep", action="store_true", help="leave the guest running at the end")
    parser.add_argument(
        "--out", type=Path, default=BUILD, help="folder for pi-vm-check.json/.md (build/pi-vm)"
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        say(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
        return 2
    guest = None
    started = time.monotonic()
    outcome: dict = {"scenarios": {}, "host": f"{os.cpu_count()} cores"}
    try:
        check_tools()
        files, built = build_image()
        if built:
            outcome["image_build_s"] = round(time.monotonic() - started)
        log = BUILD / "run.log"
        log.write_text("")
        fetch_wheels(log)
        accel = "kvm" if kvm_works(files) else "tcg"
        outcome["accel"] = accel
        disk = BUILD / "run.qcow2"
        disk.unlink(missing_ok=True)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(files["base.img"]), "-F", "raw",
             str(disk)], log)  # fmt: skip
        guest = Guest(files, disk, accel, log)
        to_ssh = guest.power_on()
        say(f"guest up ({accel}, SSH after {to_ssh:.0f} s); installing")
        figures = install(guest)
        outcome["scenarios"]["install"] = {"passed": True, "figures": figures}
        say(f"install: passed ({figures})")
        failed = []
        for name in names:
            began = time.monotonic()
            try:
                figures = SCENARIOS[name](guest)
                say(f"{name}: passed ({figures})")
            except Failed as exc:
                failed.append(name)
                figures = str(exc)
                say(f"{name}: FAILED ({figures})")
                if guest.process is None:  # left powered off: the rest needs it on
                    guest.power_on()
            outcome["scenarios"][name] = {
                "passed": name not in failed,
                "figures": figures,
                "seconds": round(time.monotonic() - began),
            }
        minutes = (time.monotonic() - started) / 60
        outcome.update(minutes=round(minutes, 1), passed=not failed)
        if args.only is None:
            write_result(args.out, outcome)
        if failed:
            say(f"FAILED: {', '.join(failed)} ({minutes:.1f} min; logs in {BUILD})")
            return 1
        say(f"passed ({minutes:.1f} min)")
        return 0
    except Failed as exc:
        say(f"install: FAILED ({exc})")
        return 1
    except CheckError as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if guest is not None and not args.keep:
            guest.cut()


if __name__ == "__main__":
    sys.exit(main())
