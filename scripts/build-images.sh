#!/usr/bin/env bash
# Build the local images for machines that cannot pull from a registry (CI): now `chaoskit images`
# (chaoskit/images.py; the build contexts ship in the package, so an installed wheel builds them too).
# Kept for old habits: FORCE=1 rebuilds every image; cached otherwise (rebuilt when a Dockerfile changes).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/chaoskit images $([ "${FORCE:-0}" = 1 ] && echo --force)
