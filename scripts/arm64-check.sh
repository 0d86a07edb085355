#!/usr/bin/env bash
# The closest this project gets to a Pi without one: an emulated 64-bit Debian
# Bookworm (Raspberry Pi OS Lite's base), the package installed there by
# edge/systemd/install.sh, and the pipeline run headless on the demo clip.
#
#   scripts/arm64-check.sh            (make arm64-check)
#   ARM64_ROOT=/var/tmp/arm64 scripts/arm64-check.sh
#
# Needs Debian's debootstrap, qemu-user-static and proot, and the Debian and
# PyPI mirrors. proot runs every arm64 program through qemu-aarch64-static
# itself, so no binfmt_misc handler is registered on the host kernel and no
# real root is needed inside. The root is kept between runs (build/arm64-root):
# the first run downloads and unpacks Bookworm (about 10 minutes), later runs
# reinstall only the app. The pre-release check; too slow for every CI run.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${ARM64_ROOT:-$SRC/build/arm64-root}
SUITE=${ARM64_SUITE:-bookworm}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
FRAMES=${ARM64_FRAMES:-40}

for tool in debootstrap qemu-aarch64-static proot; do
  if ! command -v "$tool" >/dev/null; then
    echo "arm64-check: $tool is missing: sudo apt-get install debootstrap qemu-user-static proot" >&2
    exit 2
  fi
done

# The CPU description mediapipe and XNNPACK read: the host's x86 /sys confuses
# them under emulation (mediapipe aborts without these files), so the root
# gets a plain two-core one instead.
FAKE_CPU=$ROOT.sys-cpu
mkdir -p "$FAKE_CPU"
for name in possible present online; do echo "0-1" >"$FAKE_CPU/$name"; done

# The host's CA bundle goes in beside the root's own, so a TLS-inspecting proxy
# the host trusts for PyPI is trusted inside too.
HOST_CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
CA_BIND=()
CA_ENV=()
if [ -r "$HOST_CA" ]; then
  CA_BIND=(-b "$HOST_CA:/etc/ssl/host-ca.crt")
  CA_ENV=(PIP_CERT=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt)
fi

# PIP_USER=0: under proot, access(2) reports the venv as read-only although
# writes succeed, and pip would otherwise fall back to a --user install.
in_root() {
  proot -0 -q qemu-aarch64-static -r "$ROOT" -w / \
    -b /dev -b /proc -b "$FAKE_CPU:/sys/devices/system/cpu" -b /etc/resolv.conf "${CA_BIND[@]}" \
    /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PIP_USER=0 PIP_DEFAULT_TIMEOUT=180 "${CA_ENV[@]}" "$@"
}

if [ ! -e "$ROOT/.bootstrapped" ]; then
  if [ ! -e "$ROOT/.unpacked" ]; then
    echo "== debootstrap $SUITE arm64 into $ROOT: download and unpack"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase --include=ca-certificates \
      "$SUITE" "$ROOT" "$MIRROR"
    touch "$ROOT/.unpacked"
  fi
  echo "== debootstrap: configure the packages, emulated"
  in_root /usr/bin/env DEBOOTSTRAP_DIR=/debootstrap /debootstrap/debootstrap --second-stage
  touch "$ROOT/.bootstrapped"
fi

# On a Pi, python3-picamera2 pulls in Debian's NumPy (1.24 on Bookworm) and
# the venv sees it; Debian's archive has no picamera2, so take the NumPy
# alone, and the install takes the path a Pi takes.
echo "== Debian's python3-numpy, as python3-picamera2 pulls it in on a Pi"
in_root apt-get install -y -q --no-install-recommends python3-numpy

echo "== install.sh inside the arm64 root"
rm -rf "$ROOT/src"
mkdir -p "$ROOT/src"
cp -r "$SRC/edge" "$SRC/models" "$SRC/assets" "$SRC/constraints" "$SRC/pyproject.toml" \
  "$SRC/README.md" "$ROOT/src/"
in_root /bin/bash /src/edge/systemd/install.sh --no-start

echo "== resolved versions (system NumPy: $(in_root python3 -c 'import numpy; print(numpy.__version__)'))"
in_root /opt/emotion-edge/venv/bin/python -m pip list --disable-pip-version-check |
  grep -iE '^(numpy|opencv[a-z-]*|mediapipe|ai-edge-litert|tflite[a-z-]*|pydantic|aiohttp|ddsketch) '

echo "== the pipeline on the demo clip, headless, under emulation"
rm -f "$ROOT/tmp/arm64-events.jsonl"
in_root /opt/emotion-edge/venv/bin/emotion-edge info
in_root /opt/emotion-edge/venv/bin/emotion-edge run --source demo --display none \
  --max-frames "$FRAMES" --events /tmp/arm64-events.jsonl

frames=$(grep -c '"type":"frame"' "$ROOT/tmp/arm64-events.jsonl" || true)
faces=$(grep -o '"label":' "$ROOT/tmp/arm64-events.jsonl" | wc -l)
echo "arm64-check: $frames frames processed, $faces faces labelled"
if [ "$frames" -ne "$FRAMES" ] || [ "$faces" -eq 0 ]; then
  echo "arm64-check: FAILED: expected $FRAMES frames with faces" >&2
  exit 1
fi
echo "arm64-check: passed"
