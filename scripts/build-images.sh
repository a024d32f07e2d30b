#!/usr/bin/env bash
# Build local images that provide the same binaries as the official ones, for machines that cannot
# pull from a registry (CI). Cached: an image that exists is not rebuilt (FORCE=1 rebuilds).
#   base:  chaoskit/debian:bookworm  (debootstrap --variant=minbase + docker import)
#   redis: chaoskit/redis:7          (Debian's redis-server + redis-sentinel)
#   postgres: chaoskit/postgres-patroni:15 (Debian's PostgreSQL 15, Patroni, etcd)
#   nettools: chaoskit/nettools      (iptables, for partitions from a helper container)
set -euo pipefail
cd "$(dirname "$0")/.."
have_image() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! have_image chaoskit/debian:bookworm; then
  command -v debootstrap >/dev/null 2>&1 || {
    echo "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  mirror=${CHAOSKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  root=$(mktemp -d /tmp/chaoskit-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "building base image chaoskit/debian:bookworm with debootstrap (~1 min)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/chaoskit-debootstrap.log 2>&1 || {
    tail -n 20 /tmp/chaoskit-debootstrap.log >&2; exit 3; }
  tar -C "$root" -c . | docker import - chaoskit/debian:bookworm >/dev/null
fi
if ! have_image chaoskit/redis:7; then
  echo "building chaoskit/redis:7"
  docker build -q -t chaoskit/redis:7 compose/images/redis >/dev/null
fi
if ! have_image chaoskit/postgres-patroni:15; then
  echo "building chaoskit/postgres-patroni:15 (PostgreSQL 15, Patroni, etcd from Debian)"
  docker build -q -t chaoskit/postgres-patroni:15 compose/images/postgres >/dev/null
fi
if ! have_image chaoskit/nettools; then
  echo "building chaoskit/nettools"
  docker build -q --build-arg BASE=chaoskit/debian:bookworm -t chaoskit/nettools compose/images/nettools >/dev/null
fi
echo "images ready: chaoskit/debian:bookworm chaoskit/redis:7 chaoskit/postgres-patroni:15 chaoskit/nettools"
