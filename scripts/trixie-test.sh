#!/usr/bin/env bash
# The test suite on Raspberry Pi OS Trixie's set: Debian Trixie's Python 3.13
# and the versions constraints/pi-trixie.txt pins (NumPy 2, OpenCV 5), in a
# Debian Trixie root on this machine's own architecture (no emulation), so an
# API that moved in Python, NumPy or OpenCV fails a test here, not on a Pi.
#
#   scripts/trixie-test.sh [pytest arguments]      (part of `make test`)
#
# Needs root (chroot and bind mounts; CI runs as root) and debootstrap. The
# root is made once and kept (TRIXIE_ROOT, default /var/cache/emotion-edge/
# trixie-root: about 4 minutes and 400 MB the first time); the venv in it is
# remade only when pyproject.toml or the constraints change. The working tree
# and ../shared are seen at the same paths inside, read-write and read-only.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=$(cd "$SRC/.." && pwd)/shared
ROOT=${TRIXIE_ROOT:-/var/cache/emotion-edge/trixie-root}
MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}
CONSTRAINTS=constraints/pi-trixie.txt
PICAMERA2_REAL=${PICAMERA2_REAL:-0.3.38}
# Python 3.13 and what opencv-contrib-python loads (as install.sh installs on
# a Pi); gcc and the headers for a wheel built from source; mosquitto and
# openssl for the MQTT tests, which otherwise skip.
PACKAGES=ca-certificates,python3,python3-venv,python3-dev,gcc,libgl1,libegl1,libgles2,libglib2.0-0t64,libxcb1,mosquitto,mosquitto-clients,openssl

if [ "$(id -u)" -ne 0 ]; then
  echo "trixie-test: needs root (chroot); run it as root or with sudo" >&2
  exit 2
fi
if ! command -v debootstrap >/dev/null; then
  echo "trixie-test: debootstrap is missing: apt-get install debootstrap" >&2
  exit 2
fi

if [ ! -e "$ROOT/.bootstrapped" ]; then
  echo "== debootstrap trixie into $ROOT (once; kept for later runs)"
  rm -rf "$ROOT.tmp"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOT.tmp" "$MIRROR" \
    >"$ROOT.log" 2>&1 || { tail -20 "$ROOT.log" >&2; exit 1; }
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
  echo "$PACKAGES" >"$ROOT/.packages"
  touch "$ROOT/.bootstrapped"
fi

MOUNTS=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind HOST_PATH [ro]: HOST_PATH at the same path inside the root
  mkdir -p "$ROOT$1"
  mount --bind "$1" "$ROOT$1"
  MOUNTS+=("$ROOT$1")
  if [ "${2:-}" = ro ]; then mount -o remount,bind,ro "$ROOT$1"; fi
}
mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
bind /dev
bind /dev/shm
bind "$SRC"
[ -d "$SHARED" ] && bind "$SHARED" ro
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's CA bundle, so a TLS-inspecting proxy the host trusts is trusted inside.
HOST_CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$HOST_CA" ] && cp "$HOST_CA" "$ROOT/etc/ssl/host-ca.crt"

in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt PIP_DEFAULT_TIMEOUT=180 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PI_VENV=/opt/venv-pi CI="${CI:-}" "$@"
}

if [ "$(cat "$ROOT/.packages" 2>/dev/null)" != "$PACKAGES" ]; then
  echo "== apt-get install in the root: ${PACKAGES//,/ }"
  in_root apt-get update -q >/dev/null
  in_root apt-get install -y -q --no-install-recommends ${PACKAGES//,/ } >/dev/null
  echo "$PACKAGES" >"$ROOT/.packages"
fi

# The venv as install.sh makes it on a Pi (--system-site-packages, the
# constraints), plus the test tools; remade when what it was made from changes.
stamp=$(cat "$SRC/pyproject.toml" "$SRC/$CONSTRAINTS" "$0" "$SRC/edge/systemd/install.sh" | sha256sum | cut -c1-16)
if [ "$(cat "$ROOT/opt/venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== venv: Python $(in_root python3 -c 'import sys; print(sys.version.split()[0])'), $CONSTRAINTS"
  rm -rf "$ROOT/opt/venv"
  in_root python3 -m venv --system-site-packages /opt/venv
  in_root /opt/venv/bin/pip install -q --upgrade pip
  in_root /bin/sh -c "cd '$SRC' && /opt/venv/bin/pip install -q -e '.[dev]' -c $CONSTRAINTS"
  # mediapipe is the dev venv's reference for the BlazeFace port, not part of a
  # Pi's set (its test skips without it); its Python 3.13 wheel (1.2.3) aborts
  # loading its native library in a minimal root.
  in_root /opt/venv/bin/pip uninstall -q -y mediapipe
  in_root /opt/venv/bin/pip install -q --no-deps --target /opt/venv/picamera2-real \
    "picamera2==$PICAMERA2_REAL"
  # The Pi's own install on Trixie (tests/test_pi_install.py): install.sh's venv.
  rm -rf "$ROOT/opt/venv-pi"
  in_root /bin/sh -c "PYTHON=python3 '$SRC/edge/systemd/install.sh' --venv-only /opt/venv-pi >/dev/null"
  echo "$stamp" >"$ROOT/opt/venv/.stamp"
  echo "$SRC" >"$ROOT/opt/venv/.src"
fi
# Both venvs' editable installs name the checkout they were made from; a root
# kept from a run in another checkout (CI clones to a new path each time) would
# import an `edge` that is not there, so point them at this one.
if [ "$(cat "$ROOT/opt/venv/.src" 2>/dev/null)" != "$SRC" ]; then
  echo "== editable installs: $(cat "$ROOT/opt/venv/.src" 2>/dev/null || echo '?') -> $SRC"
  for venv in /opt/venv /opt/venv-pi; do
    in_root /bin/sh -c "cd '$SRC' && $venv/bin/pip install -q --no-deps -e . >/dev/null 2>&1" ||
      { echo "trixie-test: re-pointing $venv at $SRC failed: rerun with TRIXIE_ROOT removed" >&2; exit 1; }
  done
  echo "$SRC" >"$ROOT/opt/venv/.src"
fi
in_root /opt/venv/bin/python -c 'import sys, cv2, numpy
print(f"trixie-test: Python {sys.version.split()[0]}, NumPy {numpy.__version__}, OpenCV {cv2.__version__}")'

# The editable install points at $SRC, seen at the same path inside.
status=0
# shellcheck disable=SC2016  # $1 and $@ are the inner shell's
in_root /bin/sh -c 'cd "$1" && shift && exec /opt/venv/bin/python -m pytest -p no:cacheprovider "$@"' \
  sh "$SRC" "$@" || status=$?
echo "trixie-test: ${SECONDS} s in all (root, venv and suite)"
exit "$status"
