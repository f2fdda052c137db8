#!/usr/bin/env bash
# Makes sure the binaries the test harness spawns are installed (it runs its own throwaway
# mariadbd and mints certificates with openssl). Fast no-op when everything is present;
# otherwise installs the Debian packages and fails loudly if that does not work, because a
# suite that silently skips its database tests would report green without testing anything.
set -euo pipefail

# shellcheck source=lib/apt-install.sh
source "${BASH_SOURCE[0]%/*}/lib/apt-install.sh"
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
apt_install ensure-mariadb mariadb-server mariadb-client openssl

gone="$(missing)"
if [ -n "$gone" ]; then
  echo "ensure-mariadb: still missing after install: $gone" >&2
  exit 1
fi
echo "ensure-mariadb: installed $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)" >&2
