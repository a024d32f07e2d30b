#!/usr/bin/env bash
# Install the OS packages chaoskit's local backend needs (Debian/Ubuntu). Idempotent; prints what it does.
# Usage: scripts/setup-system.sh [SYSTEM ...]   (default: every system in scripts/setup.d)
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
want() { have "$1" || need+=("$2"); }
services=()  # packaged services a system's packages start, which chaoskit stops (it runs its own servers)

want ip iproute2
want iptables iptables
want runuser util-linux
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# One file per system: scripts/setup.d/<system>.sh, sourced here (it calls `want BINARY PACKAGE` or adds to need).
here=$(cd "$(dirname "$0")" && pwd)
systems=("$@")
[ ${#systems[@]} -gt 0 ] || systems=($(cd "$here/setup.d" && ls *.sh | sed 's/\.sh$//'))
for system in "${systems[@]}"; do
  if [ ! -f "$here/setup.d/$system.sh" ]; then
    echo "setup-system: unknown system '$system' (no scripts/setup.d/$system.sh)" >&2; exit 2
  fi
  # shellcheck source=/dev/null
  . "$here/setup.d/$system.sh"
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! have apt-get; then
  echo "chaoskit needs these packages: ${need[*]}" >&2
  echo "install them as root (e.g. sudo apt-get install -y ${need[*]}) and run make again" >&2
  exit 3
fi
echo "installing OS packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services where an init system runs; chaoskit runs its own servers.
for svc in "${services[@]}"; do
  if have systemctl && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
