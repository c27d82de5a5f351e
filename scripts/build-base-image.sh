#!/usr/bin/env bash
# Build a local Debian bookworm base image with python3, venv and pip, without any registry.
#
#   scripts/build-base-image.sh [TAG]     # default TAG: mlops-base:bookworm; prints the tag on stdout
#
# Registries are unreachable here, so `FROM python:...` cannot be pulled. This script runs
# debootstrap (minbase variant) into a temporary directory and `docker import`s the tree as TAG.
# It is cached: when TAG already exists in the engine with this script's BASE_VERSION label,
# nothing is rebuilt. Pass the tag to the container build with `--build-arg BASE_IMAGE=<TAG>`.
# Needs root and a running engine (DOCKER_HOST, e.g. from scripts/docker-engine.sh start).
#
# The image trusts the CAs this host trusts (MLOPS_CA_BUNDLE, default the system bundle), so pip
# inside `docker build --network host` works where the registries sit behind a TLS proxy.
set -euo pipefail

TAG="${1:-mlops-base:bookworm}"
SUITE="${MLOPS_BASE_SUITE:-bookworm}"
MIRROR="${MLOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,python3-pip,ca-certificates"
HOST_CA="${MLOPS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
BASE_VERSION="2"

log() { echo "build-base-image: $*" >&2; }

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    log "error: no Docker engine answers (DOCKER_HOST='${DOCKER_HOST:-}'); start one with 'scripts/docker-engine.sh start' and export the DOCKER_HOST it prints."
    exit 2
fi

existing="$(docker image inspect --format '{{ index .Config.Labels "org.mlops.base-version" }}' "$TAG" 2>/dev/null || true)"
if [ "$existing" = "$BASE_VERSION" ]; then
    log "$TAG exists; skipping the build"
    echo "$TAG"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != "0" ]; then
        log "error: debootstrap is not installed and installing it needs root; run 'sudo apt-get install -y debootstrap' and retry."
        exit 2
    fi
    log "installing debootstrap with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2 \
        || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
fi

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/mlops-rootfs.XXXXXX")"
trap 'rm -rf "$ROOTFS"' EXIT

log "debootstrap $SUITE (minbase + $PACKAGES) into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >&2
# Drop the package cache and give the image the same apt sources as a normal Debian image.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
echo "deb $MIRROR $SUITE main" > "$ROOTFS/etc/apt/sources.list"
if [ -f "$HOST_CA" ]; then
    # Kept across update-ca-certificates runs inside later builds, too.
    cp "$HOST_CA" "$ROOTFS/usr/local/share/ca-certificates/host-trust.crt"
    cp "$HOST_CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi

log "importing the tree as $TAG"
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL org.mlops.base-version=$BASE_VERSION" \
    --change 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
echo "$TAG"
