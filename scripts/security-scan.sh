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
# New findings only: a finding is accepted when .secrets.baseline lists it (file + hash) audited
# as not a secret. (detect-secrets-hook would rewrite the baseline's line numbers instead.)
.venv/bin/detect-secrets scan --exclude-files '^\.secrets\.baseline$' \
    --exclude-lines '^\s*"(commit|source_commit|CommitId)": "[0-9a-f]{7,40}",?$' > "$work/scan.json"
"$PY" - "$work/scan.json" <<'PYTHON' || status=1
import json, sys
baseline = json.load(open(".secrets.baseline"))["results"]
audited = {(p, f["hashed_secret"]) for p, fs in baseline.items() for f in fs if f.get("is_secret") is False}
new = [f"{p}:{f['line_number']} {f['type']}" for p, fs in json.load(open(sys.argv[1]))["results"].items()
       for f in fs if (p, f["hashed_secret"]) not in audited]
for line in new:
    print(f"possible secret: {line}", file=sys.stderr)
sys.exit(1 if new else 0)
PYTHON
if [[ $status -eq 0 ]]; then
    echo "security scan: clean" >&2
fi
exit $status
