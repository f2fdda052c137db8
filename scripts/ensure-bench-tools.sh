#!/usr/bin/env bash
# Makes sure the load tools `npm run bench` drives are installed: Debian's sysbench (oltp_point_select
# with --mysql-ssl) and socat (the bare TCP forwarder the gateway is compared against). Fast no-op when
# both are present; otherwise installs the Debian packages and fails loudly, because a benchmark that
# silently drops a target would print a table that compares nothing.
set -euo pipefail

# shellcheck source=lib/apt-install.sh
source "${BASH_SOURCE[0]%/*}/lib/apt-install.sh"

missing=()
for bin in sysbench socat; do
  have "$bin" || missing+=("$bin")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "ensure-bench-tools: missing: ${missing[*]}; installing them with apt-get" >&2
apt_install ensure-bench-tools "${missing[@]}"
for bin in "${missing[@]}"; do
  if ! have "$bin"; then
    echo "ensure-bench-tools: still missing after install: $bin" >&2
    exit 1
  fi
done
echo "ensure-bench-tools: installed ${missing[*]}" >&2
