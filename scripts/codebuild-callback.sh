#!/usr/bin/env bash
# Answer the state machine's BuildImage step from CodeBuild (buildspec.yml calls this).
#
#   scripts/codebuild-callback.sh finish               # post_build: success if the build succeeds
#   scripts/codebuild-callback.sh fail-if-failing PHASE  # `finally` of install/pre_build, after
#                                                      # which CodeBuild skips post_build
#
# When the state machine started the build (start_build Lambda), TASK_TOKEN is set and the
# execution waits: a succeeding build answers `send-task-success` with
# {"ImageUri", "ImageTag", "CommitId", "BuildId"}, a failing one `send-task-failure` with error
# BuildFailed. Without TASK_TOKEN (Jenkins or the schedule started the build) it does nothing.
# It answers at most once per build (a marker file under build/).
#
# Reads: TASK_TOKEN, CODEBUILD_BUILD_SUCCEEDING (1/0, set by CodeBuild), IMAGE_URI, IMAGE_TAG,
# COMMIT_ID, CODEBUILD_BUILD_ID, CODEBUILD_BUILD_URL.
set -euo pipefail

mode="${1:-}"
phase="${2:-build}"
marker="build/.task-token-answered"

log() { echo "codebuild-callback: $*" >&2; }

case "$mode" in
    finish | fail-if-failing) ;;
    *)
        echo "usage: $0 finish | fail-if-failing PHASE (got '${mode}')" >&2
        exit 2
        ;;
esac

if [ -z "${TASK_TOKEN:-}" ]; then
    exit 0
fi
if [ -e "$marker" ]; then
    log "the state machine was already answered ($(cat "$marker")); nothing to do"
    exit 0
fi

succeeding="${CODEBUILD_BUILD_SUCCEEDING:-0}"
if [ "$mode" = "fail-if-failing" ] && [ "$succeeding" = "1" ]; then
    exit 0
fi

mkdir -p "$(dirname "$marker")"
if [ "$succeeding" = "1" ] && [ -n "${IMAGE_URI:-}" ]; then
    output="$(python3 -c 'import json, os; print(json.dumps({
        "ImageUri": os.environ["IMAGE_URI"],
        "ImageTag": os.environ.get("IMAGE_TAG", ""),
        "CommitId": os.environ.get("COMMIT_ID", ""),
        "BuildId": os.environ.get("CODEBUILD_BUILD_ID", ""),
    }))')"
    aws stepfunctions send-task-success --task-token "$TASK_TOKEN" --task-output "$output"
    echo "success $IMAGE_URI" > "$marker"
    log "sent task success with $IMAGE_URI"
else
    if [ "$succeeding" = "1" ]; then
        cause="CodeBuild build ${CODEBUILD_BUILD_ID:-?} finished without an IMAGE_URI; check that container/build_and_push.sh printed the pushed image URI."
    else
        cause="CodeBuild build ${CODEBUILD_BUILD_ID:-?} failed in its ${phase} phase; read its log at ${CODEBUILD_BUILD_URL:-the CodeBuild console}."
    fi
    aws stepfunctions send-task-failure --task-token "$TASK_TOKEN" --error BuildFailed --cause "$cause"
    echo "failure $phase" > "$marker"
    log "sent task failure: $cause"
fi
