#!/usr/bin/env bash
# Build the Mask R-CNN image from container/Dockerfile on this machine, without any registry.
#
#   scripts/build-image.sh TAG [SOURCE_COMMIT] [CONTEXT]   # prints TAG on stdout when it succeeds
#
# CONTEXT is the build context holding the Dockerfile (default: the repository's container/); the
# local runtime passes the snapshot of container/ it is about to run.
#
# Registries are unreachable here, so the base is the local Debian image of
# scripts/build-base-image.sh (cached; MLOPS_BASE_IMAGE names another) and torch/torchvision are
# pip-installed inside the image (INSTALL_TORCH=1: about 6 GB, several minutes the first time,
# then cached by the engine's layer cache). The build uses `--network host` because the engine
# of scripts/docker-engine.sh has no bridge network. The engine is $DOCKER_HOST, else the default
# one when it answers, else the one scripts/docker-engine.sh starts. In AWS, CodeBuild builds with
# container/build_and_push.sh on the default CUDA PyTorch base instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:-}"
commit="${2:-${SOURCE_COMMIT:-local}}"
context="${3:-$root/container}"
if [ -z "$tag" ]; then
    echo "usage: $0 TAG [SOURCE_COMMIT] [CONTEXT] (e.g. $0 local/mask-r-cnn:dev)" >&2
    exit 2
fi

if [ -z "${DOCKER_HOST:-}" ] && ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    DOCKER_HOST="$("$root/scripts/docker-engine.sh" host)"
    export DOCKER_HOST
fi
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "build-image: error: no Docker engine answers (DOCKER_HOST='${DOCKER_HOST:-}'); start one with 'scripts/docker-engine.sh start'." >&2
    exit 2
fi

base="${MLOPS_BASE_IMAGE:-}"
if [ -z "$base" ]; then
    base="$("$root/scripts/build-base-image.sh")"
fi

echo "build-image: building $tag on $base" >&2
docker build --network host \
    --build-arg "BASE_IMAGE=$base" \
    --build-arg INSTALL_TORCH=1 \
    --build-arg "SOURCE_COMMIT=$commit" \
    -t "$tag" -f "$context/Dockerfile" "$context" >&2
echo "$tag"
