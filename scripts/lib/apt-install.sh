# Sourced by the ensure-* scripts. apt_install TAG PACKAGE...: installs Debian packages (through sudo when not
# root), bounded in time so a stuck mirror or dpkg lock fails instead of hanging; exits 1 with a message
# prefixed by TAG on any failure. Never skips: a missing tool must fail the run that needs it.
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  local tag="$1"
  shift
  if ! have apt-get; then
    echo "$tag: apt-get not found; install $* by hand" >&2
    exit 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! have sudo; then
      echo "$tag: not root and sudo is not installed; cannot install packages" >&2
      exit 1
    fi
    sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
  fi
  if ! timeout 900 "${sudo[@]}" apt-get update; then
    echo "$tag: apt-get update failed" >&2
    exit 1
  fi
  if ! DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo[@]}" apt-get install -y "$@"; then
    echo "$tag: apt-get install failed" >&2
    exit 1
  fi
}
