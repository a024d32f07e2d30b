#!/usr/bin/env bash
# The OS packages a backend needs (Debian/Ubuntu). Idempotent; prints what it does.
# Usage: scripts/setup-system.sh [--backend local|docker|auto|venv] [SYSTEM ...]  (default: local, every system)
#        scripts/setup-system.sh --path BACKEND   (prints local, docker or none: the set-up `make chaos-*` does)
#
#   local         the local backend's packages (iproute2, iptables, the servers): installed with apt as root;
#                 a user is told in one line what is missing, or that the local backend needs root (exit 3)
#   docker        only what the venv needs (python3-venv), and a Docker daemon that answers (else one line,
#                 exit 3); the images come from `chaoskit images`
#   auto          local as root (as before); a user whose Docker daemon answers: docker; a user without
#                 Docker: one line naming both ways forward (exit 3)
#   venv          only what the venv needs (the unit tests, lint)
set -euo pipefail

need=()
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"  # a user's PATH lacks them (ip, iptables, dnsmasq live there)
have() { command -v "$1" >/dev/null 2>&1; }
want() { have "$1" || need+=("$2"); }
services=()  # packaged services a system's packages start, which chaoskit stops (it runs its own servers)
root() { [ "$(id -u)" = 0 ]; }

# Why this user's Docker cannot be used ('' when a daemon answers).
docker_problem() {
  if ! have docker; then echo "Docker is not installed"; return; fi
  local err
  err=$(docker info 2>&1) && return  # (the CLI prints the server's error on stdout)
  case "$err" in
    *"permission denied"*) echo "you may not use the Docker daemon (join the docker group: sudo usermod -aG docker $(id -un), then log in again)" ;;
    *) echo "no Docker daemon answers (start it: sudo systemctl start docker, or scripts/ensure-docker.sh as root)" ;;
  esac
}

# The set-up `make chaos-<system>` does for BACKEND: local, docker or none (neither can be set up here).
path_for() {
  case "$1" in
    local|docker|venv) echo "$1" ;;
    auto) if root; then echo local; elif [ -z "$(docker_problem)" ]; then echo docker; else echo none; fi ;;
    *) echo "setup-system: unknown backend '$1' (local, docker, auto)" >&2; exit 2 ;;
  esac
}

backend=local
case "${1:-}" in
  --path) path_for "${2:-auto}"; exit 0 ;;
  --backend) backend=${2:?--backend needs a value}; shift 2 ;;
esac
path=$(path_for "$backend")
systems=("$@")
again="make ${MAKE_TARGET:-chaos-${systems[0]:-redis}}"  # what the user runs (the Makefile says)

if [ "$path" = none ]; then
  echo "chaoskit: cannot run here as $(id -un): $(docker_problem), and the local backend needs root -- for the docker backend fix that and run \`$again\` again; for the local backend run \`sudo $again BACKEND=local\`" >&2
  exit 3
fi
if [ "$path" = docker ] && [ -n "$(docker_problem)" ]; then
  echo "chaoskit: the docker backend: $(docker_problem)" >&2
  exit 3
fi

python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ "$path" = local ]; then
  want ip iproute2
  want iptables iptables
  want runuser util-linux
  # One file per system: scripts/setup.d/<system>.sh, sourced here (it calls `want BINARY PACKAGE` or adds to need).
  here=$(cd "$(dirname "$0")" && pwd)
  [ ${#systems[@]} -gt 0 ] || systems=($(cd "$here/setup.d" && ls *.sh | sed 's/\.sh$//'))
  for system in "${systems[@]}"; do
    if [ ! -f "$here/setup.d/$system.sh" ]; then
      echo "setup-system: unknown system '$system' (no scripts/setup.d/$system.sh)" >&2; exit 2
    fi
    # shellcheck source=/dev/null
    . "$here/setup.d/$system.sh"
  done
fi

asked_local=$([ "$backend" = local ] && [ -n "${MAKE_TARGET:-}" ] && ! root && echo yes || true)
if [ ${#need[@]} -eq 0 ]; then
  if [ -n "$asked_local" ]; then
    echo "chaoskit: the local backend needs root (network namespaces, iptables): run \`sudo $again BACKEND=local\`, or use BACKEND=docker" >&2
    exit 3
  fi
  exit 0
fi
if [ -n "$asked_local" ]; then
  echo "chaoskit: the local backend needs root and these packages: ${need[*]} -- install them (sudo apt-get install -y ${need[*]}) and run \`sudo $again BACKEND=local\`, or use BACKEND=docker" >&2
  exit 3
fi
if ! root || ! have apt-get; then
  echo "chaoskit needs these packages: ${need[*]} -- install them as root (sudo apt-get install -y ${need[*]}) and run make again" >&2
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
