#!/usr/bin/env bash
# Upload what Jenkins produced (JUnit reports, executed notebooks, rendered ASL) to S3, where the
# CodeBuild build it starts picks them up (CI_EVIDENCE_URI) for its report group and artifacts.
#
#   scripts/publish-ci-evidence.sh s3://BUCKET/PREFIX/ci/COMMIT/
#
# Uploads reports/ -> reports/, notebooks/output/ -> notebooks/, build/asl/ -> asl/ (each only if
# present). Credentials come from the environment (Jenkins' withCredentials), never from here.
set -euo pipefail

destination="${1:-}"
if [[ ! "$destination" =~ ^s3://[^/]+/.+/$ ]]; then
    echo "usage: $0 s3://BUCKET/PREFIX/ (got '${destination}'; it must end with '/')" >&2
    exit 2
fi

uploaded=0
for pair in "reports:reports" "notebooks/output:notebooks" "build/asl:asl"; do
    source_dir="${pair%%:*}"
    target="${pair##*:}"
    if [ -d "$source_dir" ]; then
        aws s3 cp --recursive --only-show-errors "$source_dir" "${destination}${target}/"
        echo "uploaded ${source_dir}/ to ${destination}${target}/" >&2
        uploaded=$((uploaded + 1))
    fi
done
if [ "$uploaded" = 0 ]; then
    echo "nothing to upload: none of reports/, notebooks/output/, build/asl/ exists" >&2
fi
