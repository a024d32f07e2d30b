#!/usr/bin/env bash
# Make a Docker engine answer: install docker.io when missing (Debian/Ubuntu, root), start dockerd
# when it is not running. Idempotent. Prints what it does.
set -euo pipefail
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Docker is not installed: install it (e.g. sudo apt-get install -y docker.io) and run make again" >&2
    exit 3
  fi
  echo "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing docker-compose"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  fi
fi
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "the Docker daemon is not running: start it (e.g. sudo systemctl start docker)" >&2
  exit 3
fi
echo "starting dockerd (log: /var/log/chaoskit-dockerd.log)"
setsid nohup dockerd >/var/log/chaoskit-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; last log lines:" >&2
tail -n 20 /var/log/chaoskit-dockerd.log >&2
exit 3
