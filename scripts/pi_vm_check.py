#!/usr/bin/env python3
"""`make pi-vm-check`: a Raspberry Pi in a box, and the release check of the service.

Every service test in `make test` runs against stand-ins (a fake
NOTIFY_SOCKET, /proc, camera). This boots a whole machine instead: Debian
Trixie (Raspberry Pi OS today is Trixie plus Raspberry Pi's packages;
`--suite bookworm` for the previous release) with its own kernel, systemd as
PID 1, journald, udev, a V4L2 camera (v4l2loopback fed the demo clip), a DRM
screen (QEMU's std VGA) and, on Trixie, libcamera's Virtual camera under the
real picamera2, installs the checkout as the README tells a Pi user
(`sudo edge/systemd/install.sh`), and then does to it what a year on a shelf
does:

    boot      power on: the service is active and events flow
    screen    QEMU's own screendump shows the annotated frames on the console
    sandbox   systemd-analyze security <= 2.0; camera and state reached inside it
    hang      the main process frozen: the watchdog restarts it
    unplug    the camera gone for 30 s and back: waited for, no restart
    powercut  QEMU killed mid-recording: it comes back by itself, nothing lost
    desktop   a compositor started before and after the service keeps the screen
    picamera2 (Trixie) the service on picamera2 0.3.38 over Debian's libcamera
              Virtual camera: frames, every buffer back, restart and stop

Deadlines that depend on the guest's speed (QEMU's TCG runs the service at
0.5-2 frames a second, KVM at tens) are scaled by the frame rate the guest
itself measured before the scenario, and each line says so.

Each prints `pi-vm-check: <name>: passed|FAILED (<figures>)`, then
`pi-vm-check: passed` when all pass (exit 0), else exit 1. A missing tool, no
disk space or a guest that does not boot is one line and exit 2, with nothing
left running (QEMU is killed by its PID).

The disk image (debootstrap, about 4 minutes) and the wheels the install uses
(pip download, on the host: the guest reaches no package index itself) are
cached under build/pi-vm; a second run reuses them. Building the image needs
root (debootstrap, chroot). KVM is used where it works, else QEMU's TCG
(a nested VM's KVM often aborts QEMU: it is probed first).

    sudo python3 scripts/pi_vm_check.py            # make pi-vm-check (Trixie)
    sudo python3 scripts/pi_vm_check.py --suite bookworm
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
BUILD_BASE = Path(os.environ.get("PI_VM_BUILD", ROOT / "build" / "pi-vm"))
GUEST_FILES = Path(__file__).resolve().parent / "pi_vm"
# Trixie's libcamera (0.4) has the Virtual pipeline handler and Python
# bindings; picamera2 0.3.38 comes from PyPI (Debian has no python3-picamera2),
# its PiDNG and python-prctl built from source (gcc, headers, libcap).
LIBCAMERA_PACKAGES = ["python3-libcamera", "libcamera-ipa", "libcamera-tools"]
LIBCAMERA_PACKAGES += ["gcc", "python3-dev", "libcap-dev"]
# The Raspberry Pi OS releases, by the Debian they are built on: its Python,
# its glibc (the newest manylinux tag its wheels may have), the tested set,
# and its own packages (Trixie renamed libraries in the 64-bit time_t
# transition, "t64").
SUITES = {
    "trixie": {
        "python": "3.13",
        "glibc": 41,
        "constraints": "pi-trixie.txt",
        "packages": ["libglib2.0-0t64", *LIBCAMERA_PACKAGES],
        "tcg_cpu": "max,-avx2",  # see Guest._boot
    },
    "bookworm": {
        "python": "3.11",
        "glibc": 36,
        "constraints": "pi-bookworm.txt",
        "packages": ["libglib2.0-0"],
        "tcg_cpu": "max",
    },
}
MIRROR = os.environ.get("PI_VM_MIRROR", "http://deb.debian.org/debian")
DEMO_CLIP = ROOT / "assets" / "demo" / "faces.mp4"
# What a Raspberry Pi OS Lite image has that the service relies on (systemd,
# udev, dbus and logind, Python with venv), the guest's kernel, SSH for the
# check to drive it, the camera (v4l2loopback built by DKMS for Debian's
# kernel, which has neither vimc nor vkms; ffmpeg feeds it) and the desktop
# scenario's compositor (weston, seatd, chvt from kbd).
BASE_PACKAGES = [
    *("systemd", "systemd-sysv", "udev", "dbus", "libpam-systemd", "linux-image-amd64", "kmod"),
    *("openssh-server", "ca-certificates", "python3", "python3-venv", "python3-pip"),
    *("iproute2", "procps", "psmisc", "libxcb1", "libegl1", "libgles2", "libgl1"),
    *("ffmpeg", "v4l2loopback-dkms", "linux-headers-amd64", "weston", "seatd", "kbd"),
]
PICAMERA2 = "picamera2==0.3.38"
# The Virtual camera's frames: the demo clip's, as {n}.jpg (virtual.yaml's `frames`).
VIRTUAL_FRAMES = "/opt/pi-vm/frames"
VIRTUAL_YAML = "/usr/share/libcamera/pipeline/virtual/virtual.yaml"


def use_suite(name: str) -> None:
    """The Debian release the guest runs (module settings the steps read)."""
    global SUITE, BUILD, PACKAGES
    SUITE, BUILD = name, BUILD_BASE / name
    PACKAGES = BASE_PACKAGES + SUITES[name]["packages"]


use_suite("trixie")
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
    digest.update(" ".join([SUITE, MIRROR, IMAGE_SIZE, PICAMERA2, *PACKAGES]).encode())
    guest_files = sorted(p for p in GUEST_FILES.iterdir() if p.is_file())
    for path in [DEMO_CLIP, *guest_files, Path(__file__)]:
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
    """The cached disk, kernel and initrd of the suite, and whether they were
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
            f"building the {SUITE} image needs root (debootstrap, chroot): "
            f"run sudo make pi-vm-check (later runs reuse {BUILD}/base.img)"
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
    if SUITE == "trixie":
        install_picamera2(rootfs, log)


def install_picamera2(rootfs: Path, log: Path) -> None:
    """picamera2 where Raspberry Pi OS's python3-picamera2 puts it (the
    system's site-packages, seen by the service's --system-site-packages
    venv), the two stand-ins its import and `Picamera2()` need on a Virtual
    camera (scripts/pi_vm/pykms.py, virtual_camera.py: each says why), the
    demo clip's frames for the Virtual camera, and the dma-heap a Pi's
    picamera2 allocates from (dma_heap.py looks for `linux,cma`; this kernel
    has the system heap: a udev link, in group video as on a Pi)."""
    resolv = rootfs / "etc/resolv.conf"
    qemu_resolv = resolv.read_text()
    shutil.copy("/etc/resolv.conf", resolv)  # the host's, for pip during the build
    host_ca = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    env = ["env"]
    if host_ca.is_file():
        shutil.copy(host_ca, rootfs / "etc/ssl/host-ca.crt")
        # pip's --cert, and the truststore newer pips verify with (OpenSSL's paths)
        env += ["PIP_CERT=/etc/ssl/host-ca.crt", "SSL_CERT_FILE=/etc/ssl/host-ca.crt"]
    try:
        run(["chroot", str(rootfs), *env, "python3", "-m", "pip", "install", "--quiet",
             "--break-system-packages", "--no-warn-script-location", PICAMERA2], log)  # fmt: skip
    finally:
        resolv.write_text(qemu_resolv)
    site = rootfs / f"usr/local/lib/python{SUITES[SUITE]['python']}/dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    for name in ("pykms.py", "virtual_camera.py"):
        shutil.copy(GUEST_FILES / name, site / name)
    (site / "virtual_camera.pth").write_text("import virtual_camera\n")
    frames = rootfs / VIRTUAL_FRAMES.lstrip("/")
    frames.mkdir(parents=True, exist_ok=True)
    import cv2  # the host's (make pi-vm-check runs in the project's venv)

    cap, index = cv2.VideoCapture(str(DEMO_CLIP)), 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        cv2.imwrite(str(frames / f"{index}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        index += 1
    cap.release()
    rules = rootfs / "etc/udev/rules.d"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "70-pi-vm-dma-heap.rules").write_text(
        'SUBSYSTEM=="dma_heap", GROUP="video", MODE="0660"\n'
        # udev writes a comma in a link's name as "_" unless told not to
        'SUBSYSTEM=="dma_heap", KERNEL=="system", OPTIONS+="string_escape=none", '
        'SYMLINK+="dma_heap/linux,cma"\n'
    )


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
        self.monitor_path = log.with_name("monitor.sock")

    def power_on(self, timeout: float = 300) -> float:
        """Boots from the disk; seconds until SSH answers. A kernel that
        panics while booting (TCG now and then trips over the kernel's own
        code patching: "Oops: int3" in a timer) is booted once more."""
        try:
            return self._boot(timeout)
        except CheckError:
            console = self.log.with_name(f"console-{self.boots}.log")
            if "Kernel panic" not in console.read_text(errors="replace"):
                raise
            say(f"the guest's kernel panicked while booting (see {console}); booting again")
            self.cut()
            return self._boot(timeout)

    def _boot(self, timeout: float) -> float:
        self.port = free_port()
        self.boots += 1
        console = self.log.with_name(f"console-{self.boots}.log")
        # TCG's default CPU (qemu64) lacks the SSE4/AVX the wheels' kernels use
        # (SIGILL at the first inference); `max` emulates them (QEMU >= 7.2: AVX2),
        # but NumPy 2's AVX2 kernels (its X86_V3 dispatch: np.minimum, np.clip)
        # crash under TCG's emulation of them (SIGSEGV in the service's first
        # detection on Trixie's NumPy 2.5; the same wheel runs on real AVX2),
        # so Trixie's guest CPU has no AVX2. Bookworm's keeps it: without it,
        # its apt's http method dies of SIGILL (signal 4) on `apt-get update`,
        # and its NumPy 1.26 runs under TCG's AVX2. A Pi has no AVX at all.
        if self.accel == "kvm":
            cpu = ["-accel", "kvm", "-cpu", "host"]
        else:
            cpu = ["-accel", "tcg", "-cpu", SUITES[SUITE]["tcg_cpu"]]
        cmd = ["qemu-system-x86_64", *cpu, "-smp", "2", "-m", "2048",
               "-kernel", str(self.files["vmlinuz"]), "-initrd", str(self.files["initrd.img"]),
               "-append", "console=ttyS0 root=/dev/vda rw panic=-1", "-no-reboot",
               "-drive", f"file={self.disk},if=virtio,format=qcow2",
               "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
               "-device", "virtio-net-pci,netdev=net0", "-vga", "std", "-display", "none",
               "-serial", f"file:{console}",
               "-monitor", f"unix:{self.monitor_path},server,nowait"]  # fmt: skip
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

    def screendump(self, path: Path, timeout: float = 30) -> None:
        """What the guest's screen shows, as QEMU's display has it (PPM)."""
        path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX) as monitor:
            monitor.settimeout(timeout)
            monitor.connect(str(self.monitor_path))
            monitor.sendall(f"screendump {path}\n".encode())
            # the monitor prompts once on connecting and again when the command is done
            seen = b""
            try:
                while seen.count(b"(qemu)") < 2:
                    chunk = monitor.recv(4096)
                    if not chunk:
                        break
                    seen += chunk
            except TimeoutError:
                pass
        if not (path.exists() and path.stat().st_size > 0):
            raise Failed(f"QEMU wrote no screendump: {seen.decode(errors='replace')[-200:]}")

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


# The guest's frame rate the fixed deadlines below were set at (TCG on a
# 2-core host): a slower guest stretches them by REFERENCE_FPS / its own rate.
REFERENCE_FPS = 1.0
# FFmpeg's Matroska muxer closes a cluster every 5 s of the stream's time
# (libavformat/matroskaenc.c, cluster_time_limit's default for video).
CLUSTER_S = 5.0


def guest_fps(guest: Guest, window: float = 20.0) -> float:
    """Frames a second the service processed over the newest run's last
    `window` seconds of stats snapshots (0 when it has processed none)."""
    snaps = snapshots(guest)
    if not snaps:
        return 0.0
    mine = [snap for snap in snaps if snap["run"] == snaps[-1]["run"]]
    last = mine[-1]
    first = next(snap for snap in mine if snap["elapsed_s"] >= last["elapsed_s"] - window)
    span = last["elapsed_s"] - first["elapsed_s"]
    return (last["frames_processed"] - first["frames_processed"]) / span if span > 0 else 0.0


def stretch(fps: float) -> float:
    """How many times a deadline set at REFERENCE_FPS is stretched for a guest
    at `fps`: 1 at that rate or faster, at most 20 (a guest below 0.05 FPS is
    broken, not slow)."""
    return min(20.0, max(1.0, REFERENCE_FPS / max(fps, 1e-9)))


def scaled(seconds: float, fps: float) -> str:
    """How a scaled deadline reads in a scenario's line."""
    factor = stretch(fps)
    if factor == 1.0:
        return f"{seconds:.0f} s"
    return (
        f"{seconds * factor:.0f} s ({seconds:.0f} s at {REFERENCE_FPS:g} FPS; guest {fps:.2f} FPS)"
    )


def journal_since(guest: Guest, since: float, unit: str = SERVICE) -> list[tuple[float, str]]:
    """The unit's log lines after guest time `since`: (seconds after it, message)."""
    text = guest.out(
        f"journalctl -u {unit} -o short-unix --no-pager --since @{since:.3f} | tail -40"
    )
    lines = []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            lines.append((float(stamp) - since, rest.split(": ", 1)[-1]))
        except ValueError:
            continue
    return lines


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
    """The camera gone for 30 s and back: waited for, no watchdog restart;
    frames again within 5 s of its return at REFERENCE_FPS, scaled."""
    fps = guest_fps(guest)
    deadline = 5.0 * stretch(fps)
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
    back = wait_for(
        "frames after the camera returned",
        lambda: frames_after(guest, returned),
        60 * stretch(fps),
    )
    reopened = guest.out(
        f"journalctl -u {SERVICE} -o short-unix --no-pager -g 'is back after' | tail -1"
    )
    reopened_s = float(reopened.split()[0]) - returned if reopened else float("nan")
    # Where the time between the return and the first frame went, for the log.
    feeder = journal_since(guest, returned, "pi-camera")
    with guest.log.open("a") as log:
        log.write(f"unplug: after the return at {returned:.3f}\n")
        for after_s, message in journal_since(guest, returned) + feeder:
            log.write(f"  +{after_s:6.1f} s {message}\n")
    after = service(guest)
    figures = (
        f"status '{during['StatusText']}', restarts {before['NRestarts']}->{after['NRestarts']}, "
        f"camera reopened {reopened_s:.1f} s and frames {back - returned:.1f} s after its "
        f"return (gone {returned - gone:.0f} s; deadline {scaled(5.0, fps)})"
    )
    if (
        present
        or "waiting" not in during["StatusText"]
        or after["NRestarts"] != before["NRestarts"]
        or after["MainPID"] != before["MainPID"]
        or back - returned > deadline
    ):
        raise Failed(figures)
    return figures


def recorded_frames(guest: Guest, pattern: str) -> dict[str, list]:
    """[frames it decodes to, its frame rate] of each recording (the service's
    own OpenCV in its venv)."""
    script = (
        "import cv2, glob, json, sys\n"
        "counts = {}\n"
        "for path in sorted(glob.glob(sys.argv[1])):\n"
        "    cap, n = cv2.VideoCapture(path), 0\n"
        "    while cap.read()[0]: n += 1\n"
        "    counts[path] = [n, cap.get(cv2.CAP_PROP_FPS)]\n"
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
    # A minute of frames at the guest's own rate (30 to 300), given three times as long.
    fps = guest_fps(guest)
    wanted = max(30, min(300, round(60 * fps)))
    started = guest_clock(guest)
    wait_for(
        f"{wanted} frames recorded (a minute at the guest's {fps:.2f} FPS)",
        lambda: frames_since(guest, started) >= wanted,
        timeout=max(180.0, 3 * wanted / max(fps, 0.05)),
        every=2,
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
    # the recording cut, rotated aside at restart: the one with most frames
    kept, rate = max(counts.values(), default=[0, 0.0])
    # Matroska is lost at most back to its last closed cluster: FFmpeg closes
    # one every CLUSTER_S of the recording's own time, which a slow guest
    # takes far longer than that to write (a cluster's frames, not seconds).
    may_lose = max(0.4 * written, CLUSTER_S * (rate or 30.0) + 1)
    lines = events_text(guest).splitlines()
    records = [_parsed(line) for line in lines]
    starts = [i for i, r in enumerate(records) if r and _started_after(r, boot_time)]
    restart = starts[0] if starts else len(lines)
    # the line being written when the power went may be torn; no other
    torn = [i for i, r in enumerate(records[:restart]) if r is None]
    figures = (
        f"guest {fps:.2f} FPS; recording decodes {kept} of ~{written} frames "
        f"({kept / max(written, 1):.0%}; may lose {may_lose:.0f}: 40 % or a "
        f"{CLUSTER_S:g} s cluster at {rate:g} fps), "
        f"{len(torn)} torn of {restart} event lines before the cut, "
        f"new run's start line {'appended' if starts else 'MISSING'}; "
        f"rec.mp4 refused: {refusal.split(': ', 1)[-1][:90]}"
    )
    if not kept or written - kept > may_lose or torn not in ([], [restart - 1]) or not starts:
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


# Run in the guest by the service's own Python: the screen's picture against
# the camera's (the demo clip the guest's camera plays), placed as the console
# sink places it (edge.sinks.console.placement), and the notice along its
# bottom, which only the annotated picture has (edge.overlay.draw_notice).
# The recording cannot serve: Matroska holds its newest frames in memory.
SCREEN_COMPARE = """
import json, sys
from pathlib import Path
import cv2, numpy as np
from edge.config import load_config
from edge.frames import Frame, Result
from edge.overlay import draw_notice
from edge.sinks.console import placement
screen = cv2.imread(sys.argv[1])
notice = load_config(Path(sys.argv[3])).privacy.notice
cap, clip = cv2.VideoCapture(sys.argv[2]), []
while True:
    ok, frame = cap.read()
    if not ok:
        break
    clip.append(frame)
h, w = clip[0].shape[:2]
x, y, pw, ph = placement((w, h), (screen.shape[1], screen.shape[0]), True)
shown = cv2.resize(screen[y : y + ph, x : x + pw], (w, h), interpolation=cv2.INTER_AREA)
middle = slice(h // 8, h * 7 // 8)  # the HUD above, the notice below: labels' rows
def apart(a, b, q=50):
    return float(np.percentile(np.abs(a.astype(np.int16) - b.astype(np.int16)), q))
# a quarter of the pixels: faces blurred by [privacy] and their labels may cover half
diffs = [apart(shown[middle], frame[middle], 25) for frame in clip]
best = int(np.argmin(diffs))
marked = clip[best].copy()
draw_notice(marked, notice)
bottom = slice(h * 15 // 16, h)
outside = np.ones(screen.shape[:2], bool)
outside[y : y + ph, x : x + pw] = False
print(json.dumps({"screen": [screen.shape[1], screen.shape[0]], "place": [x, y, pw, ph],
                  "best": diffs[best], "frame": best, "frames": len(clip),
                  "notice_to_annotated": apart(shown[bottom], marked[bottom]),
                  "notice_to_camera": apart(shown[bottom], clip[best][bottom]),
                  "bars": float(screen[outside].mean()) if outside.any() else 0.0}))
"""
# The difference (of a quarter of the pixels), in levels of 255, under which the screen shows the
# camera's frame (scaling both ways and the console's format cost a few
# levels; another scene of the clip, or a blank screen, is tens away).
SCREEN_MATCH = 8.0


def scenario_screen(guest: Guest) -> str:
    """QEMU's screendump of the guest's display shows the camera's picture,
    annotated (the notice along its bottom), placed to fill the screen (the
    console sink on a webcam)."""
    shot = BUILD / "screen.ppm"
    guest.screendump(shot)
    guest.ssh("cat > /tmp/pi-vm-screen.ppm", stdin=shot.read_bytes())
    text = guest.out(
        f"/opt/{SERVICE}/venv/bin/python -c {shlex.quote(SCREEN_COMPARE)} "
        f"/tmp/pi-vm-screen.ppm /opt/pi-vm/{DEMO_CLIP.name} {CONFIG}",
        timeout=600,
    )
    seen = json.loads(text.splitlines()[-1])
    figures = (
        f"screen {seen['screen'][0]}x{seen['screen'][1]}, picture at {seen['place']}: "
        f"{seen['best']:.1f} levels from the camera's frame {seen['frame']} of "
        f"{seen['frames']}; its bottom {seen['notice_to_annotated']:.1f} levels from that "
        f"frame with the notice, {seen['notice_to_camera']:.1f} from it without; bars "
        f"{seen['bars']:.1f}; screendump {shot}"
    )
    if (
        seen["best"] > SCREEN_MATCH
        or seen["notice_to_annotated"] * 2 > seen["notice_to_camera"]
        or seen["bars"] > 2
    ):
        raise Failed(figures)
    return figures


def virtual_yaml(width: int = 640, height: int = 480) -> str:
    """libcamera's Virtual camera (src/libcamera/pipeline/virtual/README.md):
    the demo clip's frames at the service's main and lores sizes (it grants
    only listed sizes, in NV12)."""
    return (
        '"Virtual0":\n'
        "  supported_formats:\n"
        f"  - width: {width}\n    height: {height}\n    frame_rates: [30]\n"
        f"  - width: {width // 2}\n    height: {height // 2}\n    frame_rates: [30]\n"
        f'  frames:\n    path: "{VIRTUAL_FRAMES}/"\n'
        '  location: "CameraLocationFront"\n'
        '  model: "pi-vm virtual camera"\n'
    )


def set_source(guest: Guest, name: str) -> None:
    """The [source] name in the service's config, then a restart."""
    guest.ssh(
        f"sed -i '/^\\[source\\]/,/^\\[/ s/^name = .*/name = \"{name}\"/' {CONFIG} && "
        f"grep -q '^name = \"{name}\"' {CONFIG} && systemctl restart {SERVICE}"
    )


def scenario_picamera2(guest: Guest) -> str:
    """The service on the real picamera2 0.3.38 over Debian's libcamera and its
    Virtual camera: frames flow through picamera2's buffers (many times the
    4 it has, so each went back), a restart reopens it, a stop releases it
    (libcamera's own `cam` captures from it after)."""
    fps = guest_fps(guest)
    guest.ssh(f"mkdir -p {Path(VIRTUAL_YAML).parent} && cat > {VIRTUAL_YAML}",
              stdin=virtual_yaml().encode())  # fmt: skip
    try:
        listed = guest.out("cam --list 2>&1 || true")
        if "Virtual0" not in listed:
            raise Failed(f"libcamera lists no Virtual camera: {listed[-160:]}")
        started = guest_clock(guest)
        set_source(guest, "picamera2")

        def new_frames():
            return frames_after(guest, started, new_run=True)

        try:
            wait_for("frames from picamera2", new_frames, 120 * stretch(fps), every=2)
        except Failed:
            said = [m for _, m in journal_since(guest, started)][-3:]
            raise Failed(
                f"no frames from picamera2 ({scaled(120, fps)}): {' / '.join(said)}"
            ) from None
        first = frames_after(guest, started, new_run=True) - started
        wanted = 40  # ten times picamera2's 4 buffers: every request went back
        wait_for(f"{wanted} frames from picamera2", lambda: frames_since(guest, started) >= wanted,
                 timeout=60 + 3 * wanted / max(fps, 0.05), every=2)  # fmt: skip
        # (journalctl -g exits 1 when nothing matches: grep the output instead)
        said = guest.out(
            f"journalctl -u {SERVICE} --no-pager -o cat --since @{started:.3f} "
            "| grep 'running: source' | tail -1 || true"
        )
        if "source picamera2" not in said:
            raise Failed(f"the service did not say it runs on picamera2: {said[-200:]}")
        flowed = frames_since(guest, started)
        restarted = guest_clock(guest)
        guest.ssh(f"systemctl restart {SERVICE}")
        again = wait_for(
            "frames after a restart",
            lambda: frames_after(guest, restarted, new_run=True),
            120 * stretch(fps),
            every=2,
        )
        stop = guest_clock(guest)
        guest.ssh(f"systemctl stop {SERVICE}", timeout=120)
        stop_s = guest_clock(guest) - stop
        captured = guest.ssh("timeout 120 cam -c 1 --capture=3 2>&1", check=False, timeout=150)
        if captured.returncode != 0:
            tail = captured.stdout.decode(errors="replace").strip().splitlines()
            raise Failed(f"the camera was not free after a stop: {tail[-1] if tail else ''}")
        stuck = guest.out(
            f"journalctl -u {SERVICE} --no-pager -o cat --since @{started:.3f} "
            "| grep -cE 'did not close|Traceback' || true"  # none is the pass (grep exits 1)
        )
        figures = (
            f"first frame {first:.0f} s after the switch, {flowed} frames "
            f"through 4 buffers, frames {again - restarted:.0f} s after a restart, stop "
            f"{stop_s:.1f} s, then `cam` captured 3 frames; {stuck} stuck-close or traceback lines"
        )
        if stuck != "0":
            raise Failed(figures)
        return figures
    finally:
        guest.ssh(f"rm -f {VIRTUAL_YAML}", check=False)
        set_source(guest, "camera")


SCENARIOS = {
    "boot": scenario_boot,
    "screen": scenario_screen,
    "sandbox": scenario_sandbox,
    "hang": scenario_hang,
    "unplug": scenario_unplug,
    "powercut": scenario_powercut,
    "desktop": scenario_desktop,
    "picamera2": scenario_picamera2,
}
# Bookworm's libcamera (0.3) has no Virtual camera.
ONLY_ON = {"picamera2": "trixie"}


# --- the run -------------------------------------------------------------------


def fetch_wheels(log: Path) -> None:
    """The wheels install.sh needs for the guest (the suite's Python on
    x86_64, its tested constraints), downloaded once on the host."""
    wheels = BUILD / "wheels"
    suite = SUITES[SUITE]
    constraints = ROOT / "constraints" / suite["constraints"]
    stamp = wheels / ".key"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    wanted = [*project["project"]["dependencies"], *build, "pip", "wheel"]
    key = hashlib.sha256((constraints.read_text() + "\n".join(wanted)).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key:
        return
    say("downloading the wheels for the guest (once)")
    # every manylinux tag up to the suite's glibc (pip does not widen an
    # explicit --platform itself)
    platforms = [
        f"--platform=manylinux_2_{minor}_x86_64" for minor in range(17, suite["glibc"] + 1)
    ]
    platforms += ["--platform=manylinux2014_x86_64", "--platform=linux_x86_64"]
    wheels.mkdir(parents=True, exist_ok=True)
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
         "--only-binary=:all:", "--python-version", suite["python"], "--implementation", "cp",
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
                f"(Debian {run_.get('suite', 'bookworm').capitalize()}, {run_['accel']}, "
                f"{run_['host']})."
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


def results_name(suite: str | None = None) -> str:
    """pi-vm-check.json for Bookworm (the first target, kept), -trixie for Trixie."""
    suite = suite or SUITE
    return "pi-vm-check.json" if suite == "bookworm" else f"pi-vm-check-{suite}.json"


def write_result(out: Path, outcome: dict) -> None:
    """The suite's results .json and .md in `out`: this run as `first_run` (it built
    the image) or `cached_run`, beside the other kind when it is from the
    same commit."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.provenance import provenance

    made = provenance(DEMO_CLIP)
    path = out / results_name()
    result = json.loads(path.read_text()) if path.exists() else {}
    if result.get("provenance", {}).get("git_commit") != made["git_commit"]:
        result = {}
    kind = "first_run" if outcome.get("image_build_s") else "cached_run"
    result.update({"provenance": made, kind: outcome})
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    path.with_suffix(".md").write_text(table(result))
    say(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenarios (default: all, in order)")
    parser.add_argument("--keep", action="store_true", help="leave the guest running at the end")
    parser.add_argument(
        "--suite",
        choices=list(SUITES),
        default="trixie",
        help="the Debian release under Raspberry Pi OS to boot (default: trixie, today's)",
    )
    parser.add_argument(
        "--out", type=Path, help="folder for the results .json/.md (default: build/pi-vm/SUITE)"
    )
    args = parser.parse_args(argv)
    use_suite(args.suite)
    out = args.out or BUILD
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        say(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
        return 2
    wrong = [n for n in names if ONLY_ON.get(n, SUITE) != SUITE]
    if args.only and wrong:
        say(f"{', '.join(wrong)}: only on {', '.join(ONLY_ON[n] for n in wrong)}")
        return 2
    names = [n for n in names if n not in wrong]
    guest = None
    started = time.monotonic()
    sys.path.insert(0, str(ROOT))
    from benchmarks.provenance import record_start

    record_start()  # the results name the checkout installed in the guest, at the start
    outcome: dict = {"scenarios": {}, "host": f"{os.cpu_count()} cores", "suite": SUITE}
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
            write_result(out, outcome)
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
