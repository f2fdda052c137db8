#!/usr/bin/env bash
# Makes sure the load tools `npm run bench` drives are installed: Debian's sysbench (oltp_point_select
# with --mysql-ssl) and socat (the bare TCP forwarder the gateway is compared against). Fast no-op when
# both are present; otherwise installs the Debian packages and fails loudly, because a benchmark that
# silently drops a target would print a table that compares nothing.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
for bin in sysbench socat; do
  have "$bin" || missing+=("$bin")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "ensure-bench-tools: missing: ${missing[*]}; installing them with apt-get" >&2
if ! have apt-get; then
  echo "ensure-bench-tools: apt-get not found; install ${missing[*]} by hand" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! have sudo; then
    echo "ensure-bench-tools: not root and sudo is not installed; cannot install packages" >&2
    exit 1
  fi
  sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
fi
# Bounded so a stuck mirror or dpkg lock fails instead of hanging.
if ! timeout 900 "${sudo[@]}" apt-get update; then
  echo "ensure-bench-tools: apt-get update failed" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "ensure-bench-tools: apt-get install failed" >&2
  exit 1
fi
for bin in "${missing[@]}"; do
  if ! have "$bin"; then
    echo "ensure-bench-tools: still missing after install: $bin" >&2
    exit 1
  fi
done
echo "ensure-bench-tools: installed ${missing[*]}" >&2
