#!/usr/bin/env bash
# Makes sure the binaries the test harness spawns are installed (it runs its own throwaway
# mariadbd and mints certificates with openssl). Fast no-op when everything is present;
# otherwise installs the Debian packages and fails loudly if that does not work, because a
# suite that silently skips its database tests would report green without testing anything.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
# mariadbd lives in /usr/sbin, which is often missing from a non-root PATH.
have_mariadbd() { have mariadbd || [ -x /usr/sbin/mariadbd ]; }

missing() {
  local out=()
  have_mariadbd || out+=(mariadbd)
  local bin
  for bin in mariadb-install-db mariadb openssl; do
    have "$bin" || out+=("$bin")
  done
  echo "${out[*]:-}"
}

gone="$(missing)"
[ -z "$gone" ] && exit 0

echo "ensure-mariadb: missing: $gone; installing mariadb-server mariadb-client openssl" >&2
if ! have apt-get; then
  echo "ensure-mariadb: apt-get not found; install MariaDB (mariadbd, mariadb-install-db, mariadb) and openssl by hand" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! have sudo; then
    echo "ensure-mariadb: not root and sudo is not installed; cannot install packages" >&2
    exit 1
  fi
  sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
fi

# Bounded so a stuck mirror or dpkg lock fails CI instead of hanging it.
if ! timeout 900 "${sudo[@]}" apt-get update; then
  echo "ensure-mariadb: apt-get update failed" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo[@]}" apt-get install -y mariadb-server mariadb-client openssl; then
  echo "ensure-mariadb: apt-get install failed" >&2
  exit 1
fi

gone="$(missing)"
if [ -n "$gone" ]; then
  echo "ensure-mariadb: still missing after install: $gone" >&2
  exit 1
fi
echo "ensure-mariadb: installed $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)" >&2
