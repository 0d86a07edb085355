#!/usr/bin/env bash
# Install emotion-edge as a systemd service on Raspberry Pi OS (64-bit
# Bookworm / Python 3.11, Trixie / Python 3.13). Run from a clone of the repo:
#
#   sudo edge/systemd/install.sh              install or update, enable, start
#   sudo edge/systemd/install.sh --dry-run    print what would be done
#   sudo edge/systemd/install.sh --uninstall  stop and remove (keeps the config
#                                             and recordings; --purge removes them)
#   sudo edge/systemd/install.sh --no-start   install and enable, start at next boot
#                                             (image builds, chroots: no running systemd)
#   edge/systemd/install.sh --venv-only DIR    only the service's venv, at DIR, from this
#                                             checkout (the tests' copy of a Pi's install)
#
# Idempotent: running it again updates the code and the unit and restarts the
# service. An edited /etc/emotion-edge/config.toml is never overwritten: the
# new default goes beside it as config.toml.new.
#
# --root DIR lays the files down under DIR and skips what acts on the system
# itself (apt, users, the venv, systemctl): for tests and packaging.
set -euo pipefail

SERVICE=emotion-edge
APP_USER=emotion-edge
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The interpreter the venv is made from: the system's, which sees python3-picamera2.
PYTHON=${PYTHON:-python3}
ROOT=""
DRY_RUN=0
UNINSTALL=0
PURGE=0
START=1
VENV_ONLY=""
# Shared libraries opencv-contrib-python loads that a minimal
# 64-bit Raspberry Pi OS Lite lacks (found in an emulated arm64 Bookworm root),
# python3-venv for the venv, python3-picamera2 for the camera (from apt: it
# needs the system's libcamera bindings). A|B: either name satisfies it (Trixie
# renamed libglib2.0-0 to libglib2.0-0t64 in the 64-bit time_t transition).
APT_PACKAGES=(python3-venv python3-picamera2 libxcb1 libegl1 libgles2 libgl1 "libglib2.0-0t64|libglib2.0-0")
# The oldest picamera2 whose capture_request(wait=seconds) and
# cancel_all_and_flush() exist (0.3.20, August 2024): before it a stalled
# camera is waited for forever.
PICAMERA2_FLOOR=0.3.20

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) UNINSTALL=1; PURGE=1 ;;
    --no-start) START=0 ;;
    --root) ROOT=${2:?--root needs a folder}; shift ;;
    --venv-only) VENV_ONLY=${2:?--venv-only needs a folder}; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PREFIX=$ROOT/opt/$SERVICE
APP=$PREFIX/app
VENV=$PREFIX/venv
CONF_DIR=$ROOT/etc/$SERVICE
CONF=$CONF_DIR/config.toml
UNIT=$ROOT/etc/systemd/system/$SERVICE.service
STATE=$ROOT/var/lib/$SERVICE

# Print each action; carry it out unless --dry-run.
run() {
  printf '+ %s\n' "$*"
  [ "$DRY_RUN" -eq 1 ] || "$@"
}

# Actions on the system itself are skipped with --root.
system() {
  if [ -n "$ROOT" ]; then
    printf '+ (skipped with --root) %s\n' "$*"
  else
    run "$@"
  fi
}

if [ -z "$ROOT" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root: sudo $0 $*" >&2
  exit 1
fi

uninstall() {
  system systemctl disable --now "$SERVICE"
  run rm -f "$UNIT"
  system systemctl daemon-reload
  run rm -rf "$PREFIX"
  if [ "$PURGE" -eq 1 ]; then
    run rm -rf "$CONF_DIR" "$STATE"
    system userdel "$APP_USER"
  else
    echo "kept $CONF and $STATE (remove them with --purge)"
  fi
  echo "$SERVICE uninstalled"
}

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# The name of an A|B alternative this release's archive has (the first, else the last).
available_name() {
  local name
  IFS='|' read -ra names <<<"$1"
  for name in "${names[@]}"; do
    if apt-cache show "$name" >/dev/null 2>&1; then
      echo "$name"
      return
    fi
  done
  echo "${names[-1]}"
}

install_packages() {
  local missing=() entry name found
  for entry in "${APT_PACKAGES[@]}"; do
    found=0
    IFS='|' read -ra names <<<"$entry"
    for name in "${names[@]}"; do
      installed "$name" && found=1
    done
    [ "$found" -eq 1 ] || missing+=("$(available_name "$entry")")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    system apt-get update
    # python3-picamera2 is in Raspberry Pi OS's archive only: elsewhere (plain
    # Debian or Ubuntu on a Pi) the camera source is unavailable, the rest works.
    if [[ " ${missing[*]} " == *" python3-picamera2 "* ]] && [ "$DRY_RUN" -eq 0 ] &&
      [ -z "$ROOT" ] && ! apt-cache show python3-picamera2 >/dev/null 2>&1; then
      echo "python3-picamera2 is not in the apt sources (not Raspberry Pi OS?):" \
        "the Pi camera source will be unavailable; webcams and files work" >&2
      local package kept=()
      for package in "${missing[@]}"; do
        [ "$package" = python3-picamera2 ] || kept+=("$package")
      done
      missing=("${kept[@]}")
    fi
    if [ ${#missing[@]} -gt 0 ]; then
      system apt-get install -y --no-install-recommends "${missing[@]}"
    fi
  fi
  picamera2_floor
}

# An image that already had python3-picamera2 keeps its version above: bring
# one older than the floor up to date, or say in one line why the camera is refused.
picamera2_floor() {
  local version
  version=$(dpkg-query -W -f='${Version}' python3-picamera2 2>/dev/null) || return 0
  [ -n "$version" ] || return 0
  dpkg --compare-versions "$version" lt "$PICAMERA2_FLOOR" || return 0
  system apt-get update
  system apt-get install -y --only-upgrade python3-picamera2
  if [ -z "$ROOT" ] && [ "$DRY_RUN" -eq 0 ]; then
    version=$(dpkg-query -W -f='${Version}' python3-picamera2 2>/dev/null || true)
  fi
  if dpkg --compare-versions "$version" lt "$PICAMERA2_FLOOR"; then
    echo "python3-picamera2 $version is older than $PICAMERA2_FLOOR: the Pi camera source" \
      "refuses it (a stalled camera would hang); run 'sudo apt full-upgrade'" >&2
  fi
}

create_user() {
  local groups=video
  getent group render >/dev/null && groups=video,render
  if id "$APP_USER" >/dev/null 2>&1; then
    system usermod --append --groups "$groups" "$APP_USER"
  else
    system useradd --system --no-create-home --home-dir "/var/lib/$SERVICE" \
      --shell /usr/sbin/nologin --groups "$groups" "$APP_USER"
  fi
}

copy_app() {
  # A fresh copy of what the service runs, swapped in whole.
  run rm -rf "$APP.new"
  run mkdir -p "$APP.new"
  run cp -r "$SRC/edge" "$SRC/models" "$SRC/assets" "$SRC/constraints" "$SRC/pyproject.toml" \
    "$SRC/README.md" "$APP.new/"
  run rm -rf "$APP"
  run mv "$APP.new" "$APP"
}

# The tested dependency set for this release of Raspberry Pi OS (see
# scripts/pin_constraints.py): the versions the tests and the arm64 check
# passed with, not whatever is newest on the day of the install.
constraints_file() {
  local version
  version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case "$version" in
    3.11) echo "$APP/constraints/pi-bookworm.txt" ;;
    3.13) echo "$APP/constraints/pi-trixie.txt" ;;
    *) echo "install.sh: no tested dependency set for Python $version" \
      "(Raspberry Pi OS Bookworm has 3.11, Trixie 3.13): installing the newest versions" >&2 ;;
  esac
}

make_venv() {
  # --system-site-packages: picamera2 and libcamera come from apt.
  [ -x "$VENV/bin/python" ] || system "$PYTHON" -m venv --system-site-packages "$VENV"
  # Raspberry Pi OS's picamera2 stack is built against the system NumPy; a
  # NumPy of another major version in the venv breaks its compiled modules
  # ("numpy.dtype size changed"). The tested sets keep the system's major.
  local constraints=() file major
  file=$(constraints_file)
  if [ -n "$file" ]; then
    constraints=(--constraint "$file")
  else
    major=$("$PYTHON" -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null || true)
    [ -z "$major" ] || constraints=("numpy==$major.*")
  fi
  system "$VENV/bin/pip" install --upgrade pip
  system "$VENV/bin/pip" install --editable "${APP}[pi]" "${constraints[@]}"
}

install_config() {
  local default=$SRC/edge/config.example.toml
  run mkdir -p "$CONF_DIR"
  if [ ! -e "$CONF" ]; then
    run install -m 0644 "$default" "$CONF"
  elif cmp -s "$default" "$CONF"; then
    echo "$CONF is the default: unchanged"
  else
    # Nothing the user wrote is lost: keep it, put the new default beside it.
    run install -m 0644 "$default" "$CONF.new"
    echo "kept your edited $CONF; the new default is $CONF.new"
  fi
}

install_unit() {
  run mkdir -p "$(dirname "$UNIT")"
  run install -m 0644 "$SRC/edge/systemd/$SERVICE.service" "$UNIT"
  if [ "$START" -eq 1 ]; then
    system systemctl daemon-reload
    system systemctl enable "$SERVICE"
    system systemctl restart "$SERVICE"
  elif command -v systemctl >/dev/null; then
    # Offline, on the file system: works where systemd is not running.
    system systemctl --root=/ enable "$SERVICE"
    echo "$SERVICE enabled: it starts at the next boot (or: sudo systemctl start $SERVICE)"
  else
    echo "systemctl not found: enable the service once systemd is there" \
      "(systemctl enable $SERVICE)" >&2
  fi
}

if [ "$UNINSTALL" -eq 1 ]; then
  uninstall
  exit 0
fi

if [ -n "$VENV_ONLY" ]; then
  # The venv exactly as below, from this checkout: what `make test` runs the
  # README's commands in (tests/test_pi_install.py), with no dev extras.
  APP=$SRC
  VENV=$VENV_ONLY
  make_venv
  exit 0
fi

install_packages
create_user
copy_app
make_venv
install_config
install_unit
cat <<EOF
$SERVICE installed.
  logs:     journalctl -u $SERVICE -f
  status:   systemctl status $SERVICE
  config:   $CONF (check it: $VENV/bin/emotion-edge check-config $CONF;
            apply it: sudo systemctl restart $SERVICE)
  remove:   sudo $0 --uninstall
EOF
