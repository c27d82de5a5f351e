#!/usr/bin/env bash
# Security scan of the kit: cfn-lint and checkov on the rendered template, detect-secrets on the
# repository's tracked files (audited false positives live in .secrets.baseline).
#
#   scripts/security-scan.sh            scan (checkov must exist in build/checkov-venv)
#   scripts/security-scan.sh --install  first create build/checkov-venv with the pinned checkov
#
# checkov lives in its own virtual environment because it pins boto3 1.35, which clashes with the
# boto3 of this project's .venv. Exit code: 0 clean, 1 a finding, 2 a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.2.533
CHECKOV_VENV=build/checkov-venv
PY=.venv/bin/python

if [[ "${1:-}" == "--install" ]]; then
    if ! "$CHECKOV_VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
        echo "installing checkov==$CHECKOV_VERSION into $CHECKOV_VENV" >&2
        python3 -m venv "$CHECKOV_VENV"
        "$CHECKOV_VENV/bin/pip" install --quiet --upgrade pip
        "$CHECKOV_VENV/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
    fi
fi
for tool in "$PY" .venv/bin/cfn-lint .venv/bin/detect-secrets-hook "$CHECKOV_VENV/bin/checkov"; do
    if [[ ! -x "$tool" ]]; then
        echo "error: $tool is missing; run 'make setup' and 'scripts/security-scan.sh --install'." >&2
        exit 2
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m workflow infra --output "$work/template.yaml" >/dev/null

status=0
echo "== cfn-lint" >&2
.venv/bin/cfn-lint "$work/template.yaml" || status=1
echo "== checkov" >&2
"$CHECKOV_VENV/bin/checkov" -f "$work/template.yaml" --framework cloudformation \
    --compact --quiet --skip-download || status=1
echo "== detect-secrets" >&2
git ls-files -z | grep -zv '^\.secrets\.baseline$' \
    | xargs -0 .venv/bin/detect-secrets-hook --baseline .secrets.baseline || status=1
if [[ $status -eq 0 ]]; then
    echo "security scan: clean" >&2
fi
exit $status
