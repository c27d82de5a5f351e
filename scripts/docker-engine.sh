#!/usr/bin/env bash
# Start or stop a private Docker engine that keeps every byte of traffic on this machine.
#
#   scripts/docker-engine.sh start   # installs docker.io if missing, starts dockerd, prints DOCKER_HOST
#   scripts/docker-engine.sh stop    # stops the dockerd this script started (by its pidfile)
#   scripts/docker-engine.sh host    # prints the DOCKER_HOST value (whether or not it runs)
#   scripts/docker-engine.sh status  # exit 0 when the engine answers, 1 otherwise
#
# The daemon runs with --bridge=none --iptables=false --ip6tables=false --ip-forward=false, so it
# never touches the host's network configuration; builds and runs use `--network host`. Its data
# root, exec root, pidfile, socket and log live in one state directory (MLOPS_DOCKER_DIR, default
# ${TMPDIR:-/tmp}/mlops-docker), so stopping it leaves nothing of the host's Docker set-up changed.
# Image registries are unreachable here: build the base image with scripts/build-base-image.sh.
#
# stdout carries only the DOCKER_HOST value (machine output); progress goes to stderr.
set -euo pipefail

STATE_DIR="${MLOPS_DOCKER_DIR:-${TMPDIR:-/tmp}/mlops-docker}"
SOCKET="$STATE_DIR/docker.sock"
PIDFILE="$STATE_DIR/dockerd.pid"
LOGFILE="$STATE_DIR/dockerd.log"
DOCKER_HOST_VALUE="unix://$SOCKET"
START_TIMEOUT="${MLOPS_DOCKER_START_TIMEOUT:-60}"

log() { echo "docker-engine: $*" >&2; }

answers() {
    command -v docker >/dev/null 2>&1 || return 1
    DOCKER_HOST="$DOCKER_HOST_VALUE" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

install_engine() {
    if command -v dockerd >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != "0" ]; then
        log "error: dockerd is not installed and installing it needs root; run 'sudo apt-get install -y docker.io' and retry."
        exit 2
    fi
    log "installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends docker.io >&2
}

start() {
    if answers; then
        log "engine already answers on $DOCKER_HOST_VALUE"
        echo "$DOCKER_HOST_VALUE"
        return 0
    fi
    install_engine
    mkdir -p "$STATE_DIR/data" "$STATE_DIR/exec"
    if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        rm -f "$PIDFILE"   # stale pidfile from a daemon that died; dockerd refuses to start with it
    fi
    log "starting dockerd (state in $STATE_DIR, log $LOGFILE)"
    setsid dockerd \
        --data-root "$STATE_DIR/data" \
        --exec-root "$STATE_DIR/exec" \
        --pidfile "$PIDFILE" \
        --host "$DOCKER_HOST_VALUE" \
        --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
        >"$LOGFILE" 2>&1 </dev/null &
    local waited=0
    until answers; do
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            log "error: dockerd did not answer on $SOCKET within ${START_TIMEOUT}s; see $LOGFILE (last lines below)."
            tail -n 20 "$LOGFILE" >&2 || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "engine answers after ${waited}s"
    echo "$DOCKER_HOST_VALUE"
}

stop() {
    if [ ! -f "$PIDFILE" ]; then
        log "no pidfile at $PIDFILE: no engine started by this script is running"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        # Containers started from this engine are stopped first so they do not outlive it.
        if answers; then
            local running
            running="$(DOCKER_HOST="$DOCKER_HOST_VALUE" docker ps -q || true)"
            if [ -n "$running" ]; then
                # shellcheck disable=SC2086
                DOCKER_HOST="$DOCKER_HOST_VALUE" docker stop -t 10 $running >/dev/null || true
            fi
        fi
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge 30 ]; then
                log "dockerd (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    rm -f "$PIDFILE" "$SOCKET"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    host) echo "$DOCKER_HOST_VALUE" ;;
    status) answers ;;
    *)
        echo "usage: $0 start|stop|host|status (got '${1:-}')" >&2
        exit 2
        ;;
esac
