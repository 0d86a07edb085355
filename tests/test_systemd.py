"""The systemd unit and the installer, checked without systemd running."""

import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

UNIT = ROOT / "edge" / "systemd" / "emotion-edge.service"
INSTALL = ROOT / "edge" / "systemd" / "install.sh"
EXPOSURE_TARGET = 2.0

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt install systemd)",
)


@needs_analyze
def test_unit_verifies_cleanly(tmp_path):
    # verify insists that ExecStart's program exists; point it at a stand-in.
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    text = UNIT.read_text()
    assert "ExecStart=/opt/emotion-edge/venv/bin/python -m edge run" in text
    unit = tmp_path / "emotion-edge.service"
    unit.write_text(text.replace("/opt/emotion-edge/venv/bin/python", str(python)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stderr


@needs_analyze
def test_security_exposure_meets_the_target():
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for emotion-edge.service: ([\d.]+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    assert float(match.group(1)) <= EXPOSURE_TARGET


def test_unit_keeps_the_camera_and_display_reachable():
    text = UNIT.read_text()
    assert "\nPrivateDevices=" not in text  # it would hide /dev/video*, /dev/media*
    for device in ("char-video4linux", "char-media", "char-drm", "char-dma_heap"):
        assert f"DeviceAllow={device} rw" in text
    for setting in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",  # a late or lost camera, a failed start: start again
        "StartLimitIntervalSec=0",  # and never give up
        "DevicePolicy=closed",
        "SupplementaryGroups=video render",
        "EnvironmentFile=-/etc/default/",
        "--config /etc/emotion-edge/config.toml",
        "CapabilityBoundingSet=\n",
    ):
        assert setting in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shell_scripts_pass_shellcheck():
    proc = subprocess.run(
        [
            "shellcheck",
            str(INSTALL),
            str(ROOT / ".ci" / "run"),
            str(ROOT / "scripts/arm64-check.sh"),
            str(ROOT / "scripts/trixie-test.sh"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def install(*args):
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=60)


def test_dry_run_prints_every_action_and_changes_nothing(tmp_path):
    proc = install("--dry-run", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    actions = proc.stdout
    for expected in (
        "useradd --system",
        "python3 -m venv --system-site-packages",
        "pip install --editable",
        "install -m 0644",
        "emotion-edge.service",
        "systemctl enable emotion-edge",
        "journalctl -u emotion-edge -f",
    ):
        assert expected in actions
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl not installed")
def test_no_start_enables_offline_and_starts_nothing(tmp_path):
    proc = install("--dry-run", "--no-start", "--root", str(tmp_path))
    actions = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert any(line.endswith("systemctl --root=/ enable emotion-edge") for line in actions)
    assert not any("restart" in line or "daemon-reload" in line for line in actions)
    assert "starts at the next boot" in proc.stdout
    started = install("--dry-run", "--root", str(tmp_path)).stdout
    assert "systemctl restart emotion-edge" in started


def test_install_keeps_an_edited_config_and_uninstall_keeps_it_too(tmp_path):
    assert install("--root", str(tmp_path)).returncode == 0
    config = tmp_path / "etc/emotion-edge/config.toml"
    unit = tmp_path / "etc/systemd/system/emotion-edge.service"
    app = tmp_path / "opt/emotion-edge/app"
    assert config.read_text() == (ROOT / "edge/config.example.toml").read_text()
    assert unit.read_text() == UNIT.read_text()
    assert (app / "models/emotion_int8.tflite").is_file() and (app / "edge/cli.py").is_file()

    config.write_text(config.read_text().replace('display = "auto"', 'display = "none"'))
    edited = config.read_text()
    again = install("--root", str(tmp_path))
    assert again.returncode == 0
    assert config.read_text() == edited  # nothing the user wrote is lost
    assert (config.parent / "config.toml.new").is_file()
    assert "kept your edited" in again.stdout

    removed = install("--uninstall", "--root", str(tmp_path))
    assert removed.returncode == 0
    assert not unit.exists() and not app.exists()
    assert config.read_text() == edited
    install("--purge", "--root", str(tmp_path))
    assert not config.exists()


def test_unit_does_not_order_after_a_unit_it_never_pulls_in():
    text = UNIT.read_text()
    after = next(line for line in text.splitlines() if line.startswith("After="))
    wants = " ".join(line for line in text.splitlines() if line.startswith(("Wants=", "Requires=")))
    for unit in after.removeprefix("After=").split():
        # network.target is pulled in by the system; anything else must be wanted here
        assert unit == "network.target" or unit in wants, unit


def fake_python(tmp_path, version: str):
    """A python3 that reports another version, for the installer's choice of set."""
    script = tmp_path / f"python{version}"
    script.write_text(f'#!/bin/sh\ncase "$2" in *numpy*) echo 1 ;; *) echo {version} ;; esac\n')
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("3.11", "constraints/pi-bookworm.txt"), ("3.13", "constraints/pi-trixie.txt")],
)
def test_install_uses_the_tested_set_for_the_release(tmp_path, version, expected):
    proc = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": fake_python(tmp_path, version)},
    )
    assert proc.returncode == 0, proc.stderr
    pip = next(line for line in proc.stdout.splitlines() if "pip install --editable" in line)
    assert f"--constraint {tmp_path}/opt/emotion-edge/app/{expected}" in pip
    assert (ROOT / expected).is_file()


def test_install_says_when_no_tested_set_fits(tmp_path):
    proc = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": fake_python(tmp_path, "3.12")},
    )
    assert proc.returncode == 0
    assert "no tested dependency set for Python 3.12" in proc.stderr
    pip = next(line for line in proc.stdout.splitlines() if "pip install --editable" in line)
    assert "--constraint" not in pip and pip.endswith("numpy==1.*")  # the system's major


def test_constraints_pin_the_pi_runtime_and_keep_the_system_numpy_major():
    for name, numpy_major in (("pi-bookworm", "1"), ("pi-trixie", "2")):
        pins = dict(
            line.split("==")
            for line in (ROOT / "constraints" / f"{name}.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
        for package in ("numpy", "opencv-contrib-python", "ai-edge-litert"):
            assert package in pins, (name, package)
        assert pins["numpy"].split(".")[0] == numpy_major, name


def test_unknown_option_is_refused():
    proc = install("--frobnicate")
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr


def fake_dpkg_query(tmp_path, installed: dict[str, str]) -> dict:
    """A PATH whose dpkg-query reports `installed` (package: version), as Debian's does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cases = "".join(
        f'  {name}) case "$2" in *Status*) echo "install ok installed" ;; *) echo {version} ;; '
        "esac; exit 0 ;;\n"
        for name, version in installed.items()
    )
    script = bin_dir / "dpkg-query"
    script.write_text(f'#!/bin/sh\ncase "$3" in\n{cases}esac\nexit 1\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


TRIXIE = {
    "python3-venv": "3.13.5-1",
    "libxcb1": "1.17.0-2",
    "libegl1": "1.7.0-1",
    "libgles2": "1.7.0-1",
    "libgl1": "1.7.0-1",
    "libglib2.0-0t64": "2.84.3-1",  # Trixie's name after the time_t transition
}


def dry_run_with_picamera2(tmp_path, version: str) -> subprocess.CompletedProcess:
    """install.sh --dry-run on a Trixie whose dpkg reports python3-picamera2 `version`."""
    env = fake_dpkg_query(tmp_path, {**TRIXIE, "python3-picamera2": version})
    proc = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(tmp_path / "root")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
def test_install_finds_trixies_renamed_glib_and_keeps_a_new_picamera2(tmp_path):
    proc = dry_run_with_picamera2(tmp_path, "0.3.31-1")
    assert "apt-get" not in proc.stdout  # everything is there: no update, no install
    assert "picamera2" not in proc.stderr


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
def test_install_upgrades_a_picamera2_older_than_the_floor(tmp_path):
    proc = dry_run_with_picamera2(tmp_path, "0.3.19-1")
    assert "apt-get install -y --only-upgrade python3-picamera2" in proc.stdout
    # with --root nothing is upgraded, so the version stays, and it says so in one line
    lines = [line for line in proc.stderr.splitlines() if "python3-picamera2" in line]
    assert len(lines) == 1 and "older than 0.3.20" in lines[0] and "full-upgrade" in lines[0]
