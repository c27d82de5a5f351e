"""Least privilege and secrets: every configuration's template, as deployed, and the repository.

- The template rendered for several configurations passes cfn-lint.
- SAM is expanded with `samtranslator` (what CloudFormation deploys: the Lambda roles SAM
  generates included), and every IAM statement and managed policy of the result is checked: no
  `*` or `sagemaker:*`-style wildcard action, no `AdministratorAccess`/`PowerUserAccess`/
  `*FullAccess`, `iam:PassRole` only with a condition.
- checkov (from PyPI, in its own virtual environment: it pins boto3 1.35, which clashes with
  this project's; `scripts/security-scan.sh --install` creates `build/checkov-venv`) reports no
  failed check. Without checkov the test is skipped, unless `RELIABILITY_REQUIRE_CHECKOV=1`.
- Who can approve: no role except the approval API's can both read an approval task token (the
  execution history, an execution's data, or the approval records in S3) and send a task result;
  the build, which runs pushed code, holds no `states:SendTask*` at all.
- The SageMaker execution role reads its inputs only, writes only under the pipeline's job
  prefixes, deletes nothing, and cannot reach approvals/ or ci/.
- detect-secrets finds nothing in the repository's files beyond the audited false positives of
  `.secrets.baseline`, and does find a planted key (so the scanner is live).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import REPO, Tally

from workflow.config import WorkflowConfig, load_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "infrastructure and secrets"
BIN = Path(sys.executable).parent
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "eu-west-1, own account": {"region": "eu-west-1", "account_id": "123456789012"},
    "no approval, no notification": {"approval.enabled": False, "notification.enabled": False},
    "no evaluation, no gate": {"evaluation.enabled": False, "gate.enabled": False},
    "spot training, SSM hyperparameters": {
        "training.spot": True,
        "training.hyperparameters_ssm_parameter": "/mask-r-cnn/hyperparameters",
    },
}
# Managed policies SAM attaches to the Lambda roles (logs; X-Ray because Tracing is Active).
LAMBDA_BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ALLOWED_MANAGED = {LAMBDA_BASIC_EXECUTION, "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}
# A line that holds only a git commit id under a commit key (benchmark and run records).
COMMIT_LINE = r'^\s*"(commit|source_commit|CommitId)": "[0-9a-f]{7,40}",?$'
BROAD_POLICY_WORDS = ("AdministratorAccess", "PowerUserAccess", "FullAccess", "IAMFullAccess")


def _config(overrides: dict[str, Any]) -> WorkflowConfig:
    return load_config(REPO / "workflow.yaml", environ={}, overrides=overrides or None)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every variant's rendered template: (file, data)."""
    from workflow.infra import render_template, write_rendered

    found = {}
    for name, overrides in VARIANTS.items():
        config = _config(overrides)
        out = tmp_path_factory.mktemp("infra") / "template.yaml"
        write_rendered(config, out)
        found[name] = (out, render_template(config))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _deployed(template: dict[str, Any], region: str, account: str) -> dict[str, Any]:
    """Expand SAM like CloudFormation does (the bundle's CodeUri as `sam package` writes it)."""
    from samtranslator.translator.transform import transform

    class Loader:
        def load(self) -> dict[str, str]:
            return {"AWSLambdaBasicExecutionRole": LAMBDA_BASIC_EXECUTION}

    packaged = copy.deepcopy(template)
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged-artifacts/lambda.zip"
    params = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}
    return dict(transform(packaged, params, Loader()))


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p.get("PolicyDocument", p) for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        if "AssumeRolePolicyDocument" in props:
            documents.append(props["AssumeRolePolicyDocument"])
        for document in documents:
            if isinstance(document, dict):
                for statement in _as_list(document.get("Statement", [])):
                    yield name, statement


def test_cfn_lint_passes_for_every_configuration(
    rendered: dict[str, tuple[Path, dict[str, Any]]], tally: Tally
) -> None:
    row = tally.row(AREA, f"cfn-lint on rendered templates ({len(rendered)} configurations)")
    paths = [str(path) for path, _ in rendered.values()]
    # One cfn-lint process for every variant (its start-up is most of its time); each finding
    # line names its file.
    result = subprocess.run(
        [str(BIN / "cfn-lint"), *paths], capture_output=True, text=True, timeout=600
    )
    for path in paths:
        findings = path in result.stdout
        row.count("findings" if findings else "clean", findings)
    assert result.returncode == 0, result.stdout[-3000:]


def test_deployed_iam_is_least_privilege_for_every_configuration(
    rendered: dict[str, tuple[Path, dict[str, Any]]], tally: Tally
) -> None:
    row = tally.row(AREA, "IAM statements of the deployed (SAM-expanded) templates")
    managed_row = tally.row(AREA, "managed policies attached")
    for name, (_, template) in rendered.items():
        config = _config(VARIANTS[name])
        deployed = _deployed(template, config.region, config.account_id)
        text = json.dumps(deployed)
        for word in BROAD_POLICY_WORDS:
            assert word not in text, f"{name}: {word} appears in the deployed template"
        for resource_name, resource in deployed["Resources"].items():
            for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
                bad = arn not in ALLOWED_MANAGED
                managed_row.count(arn.rsplit("/", 1)[-1], bad)
                assert not bad, f"{name}: {resource_name} gets the managed policy {arn}"
        for resource_name, statement in _statements(deployed):
            problems = []
            actions = _as_list(statement.get("Action", []))
            if statement.get("NotAction") or statement.get("NotResource"):
                problems.append("NotAction/NotResource")
            for action in actions:
                if not isinstance(action, str):
                    problems.append(f"non-literal action {action!r}")
                    continue
                service, _, verb = action.partition(":")
                if statement.get("Effect") == "Allow" and ("*" in verb or action == "*"):
                    problems.append(f"wildcard action {action}")
                if service.lower() == "sagemaker" and "*" in verb:
                    problems.append(f"SageMaker wildcard {action}")
            if "iam:PassRole" in actions and "Condition" not in statement:
                problems.append("iam:PassRole without a condition")
            principal = statement.get("Principal")
            everyone = principal == "*" or (
                isinstance(principal, dict) and principal.get("AWS") == "*"
            )
            if everyone and statement.get("Effect") == "Allow":
                problems.append("Allow to every principal")
            row.count("ok" if not problems else "violation", bool(problems))
            assert not problems, f"{name}: {resource_name}: {problems}: {statement}"


# What reads an approval token: the TaskScheduled event of RequestApproval (its Parameters) in the
# history, an execution's data, and the approval records the request Lambda stores in S3.
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
TOKEN_READERS = ("states:GetExecutionHistory", "states:DescribeExecution")
# SendTask* take a token, not a resource: whoever holds the action can answer any token.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
TOKEN_SENDERS = ("states:SendTaskSuccess", "states:SendTaskFailure")
# The one principal that may do both: the approval API behind the signed links.
APPROVER_ROLES = {"ApprovalApiFunctionRole"}
BUCKET = "${ArtifactBucket.Arn}/${ArtifactPrefix}/"


def _resource_texts(statement: dict[str, Any]) -> list[str]:
    """The statement's resources as text, ``Fn::Sub`` templates kept unresolved."""
    texts = []
    for resource in _as_list(statement.get("Resource", [])):
        if isinstance(resource, dict) and "Fn::Sub" in resource:
            sub = resource["Fn::Sub"]
            texts.append(sub if isinstance(sub, str) else sub[0])
        elif isinstance(resource, dict) and "Fn::GetAtt" in resource:
            texts.append("${" + ".".join(_as_list(resource["Fn::GetAtt"])) + "}")
        else:
            texts.append(str(resource))
    return texts


def _allows(statements: list[dict[str, Any]], action: str, resource: str = "*") -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` (IAM wildcards honoured)."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if resource == "*" or any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in _resource_texts(statement)
        ):
            return True
    return False


def _role_statements(deployed: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every IAM role of the deployed template with its inline statements."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for name, resource in deployed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        found = roles.setdefault(name, [])
        for policy in resource.get("Properties", {}).get("Policies", []):
            found.extend(_as_list(policy.get("PolicyDocument", policy).get("Statement", [])))
    return roles


def test_only_the_approval_api_can_read_and_answer_an_approval_token(
    rendered: dict[str, tuple[Path, dict[str, Any]]], tally: Tally
) -> None:
    row = tally.row(AREA, "roles that can read and answer an approval token (approval bypass)")
    for name, (_, template) in rendered.items():
        config = _config(VARIANTS[name])
        roles = _role_statements(_deployed(template, config.region, config.account_id))
        assert "BuildRole" in roles and "ApprovalApiFunctionRole" in roles, sorted(roles)
        for role, statements in roles.items():
            reads = any(_allows(statements, a) for a in TOKEN_READERS) or any(
                _allows(statements, a, BUCKET + "approvals/token.json")
                for a in ("s3:GetObject", "s3:GetObjectVersion")
            )
            sends = any(_allows(statements, a) for a in TOKEN_SENDERS)
            bypass = reads and sends and role not in APPROVER_ROLES
            row.count("bypass" if bypass else "held", bypass)
            assert not bypass, (
                f"{name}: {role} can read the approval token and send a task result, so it "
                "can approve a model without a reviewer"
            )
        # The build runs pushed code and any build dependency: it may answer nothing at all.
        assert not any(_allows(roles["BuildRole"], a) for a in TOKEN_SENDERS), name


def test_sagemaker_role_reads_inputs_and_writes_only_its_jobs_outputs(
    rendered: dict[str, tuple[Path, dict[str, Any]]], tally: Tally
) -> None:
    row = tally.row(AREA, "SageMaker role: S3 keys out of a job's reach")
    job = "${Name}-abc1234-20261203-010546-1f6a"
    readable = ["data/train/annotations.json", f"models/{job}/output/model.tar.gz",
                f"checkpoints/{job}/checkpoint.pth"]  # fmt: skip
    writable = [f"models/{job}/output/model.tar.gz", f"checkpoints/{job}/checkpoint.pth",
                f"transform/{job}/images/a.png.out"]  # fmt: skip
    # What judges a model, and what other pipelines and the reviewers own.
    unwritable = ["data/test/annotations.json", "data/train/images/a.png",
                  "approvals/token.json", "ci/build-artifacts.zip", "models/model.tar.gz",
                  "models/other-pipeline-x/output/model.tar.gz"]  # fmt: skip
    unreadable = ["approvals/token.json", "approvals/decision.json", "ci/build-artifacts.zip"]
    for name, (_, template) in rendered.items():
        config = _config(VARIANTS[name])
        roles = _role_statements(_deployed(template, config.region, config.account_id))
        statements = roles["SageMakerExecutionRole"]
        problems = []
        for key in readable:
            if not _allows(statements, "s3:GetObject", BUCKET + key):
                problems.append(f"cannot read its input {key}")
        for key in writable:
            if not _allows(statements, "s3:PutObject", BUCKET + key):
                problems.append(f"cannot write its output {key}")
        for key in unwritable:
            for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
                if _allows(statements, action, BUCKET + key):
                    problems.append(f"{action} on {key}")
        for key in unreadable:
            if _allows(statements, "s3:GetObject", BUCKET + key):
                problems.append(f"s3:GetObject on {key}")
        row.count("scoped" if not problems else "too broad", bool(problems))
        assert not problems, f"{name}: the SageMaker role {problems}"


def _checkov() -> str | None:
    for candidate in (REPO / "build" / "checkov-venv" / "bin" / "checkov", BIN / "checkov"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("checkov")


def test_checkov_finds_no_failed_check(
    rendered: dict[str, tuple[Path, dict[str, Any]]], tally: Tally
) -> None:
    checkov = _checkov()
    if checkov is None:
        message = (
            "checkov is not installed; run 'scripts/security-scan.sh --install' (it creates "
            "build/checkov-venv: checkov pins boto3 1.35, which clashes with this project's)"
        )
        if os.environ.get("RELIABILITY_REQUIRE_CHECKOV") == "1":
            pytest.fail(message)
        pytest.skip(message)
    row = tally.row(AREA, "checkov checks on rendered templates")
    files: dict[str, str] = {}  # the path checkov reports (without the leading "/") -> variant
    for name, (path, template) in rendered.items():
        files[str(path).lstrip("/")] = name
        # A check may only be skipped in the template with a written reason.
        for resource_name, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert str(skip.get("comment", "")).strip(), (
                    f"{name}: {resource_name} skips {skip.get('id')} without a comment"
                )
    # One checkov process for every variant: its start-up is most of its time (7 s for one
    # template, 8 s for three, measured on 2 cores).
    arguments = [argument for path, _ in rendered.values() for argument in ("-f", str(path))]
    result = subprocess.run(
        [checkov, *arguments, "--framework", "cloudformation", "--output", "json",
         "--skip-download", "--compact"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (rc {result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")  # fmt: skip
    reports = report if isinstance(report, list) else [report]
    results = [r.get("results", {}) for r in reports]

    def variant(check: dict[str, Any]) -> str:
        reported = os.path.normpath(str(check.get("file_path", ""))).lstrip("/")
        return next((name for path, name in files.items() if path.endswith(reported)), reported)

    passed = [c for r in results for c in r.get("passed_checks", [])]
    assert {variant(c) for c in passed} == set(rendered), "checkov did not check every variant"
    for _ in passed:
        row.count("passed")
    for check in (c for r in results for c in r.get("skipped_checks", [])):
        row.count("skipped in the template with a reason")
        note = f"skipped {check['check_id']} on {check['resource']}"
        if note not in row.notes:
            row.notes.append(note)
    failed = [c for r in results for c in r.get("failed_checks", [])]
    for check in failed:
        row.count(f"failed {check.get('severity') or 'unrated'}", True)
        row.notes.append(f"{variant(check)}: {check['check_id']} {check['resource']}")
    assert not failed, "; ".join(
        f"{variant(c)}: {c['check_id']} ({c.get('severity')}) {c['resource']}: {c['check_name']}"
        for c in failed
    )


def _scan(paths: list[str], cwd: Path) -> dict[str, list[dict[str, Any]]]:
    result = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--exclude-files", r"^\.secrets\.baseline$",
         "--exclude-lines", COMMIT_LINE, *paths],
        capture_output=True, text=True, timeout=900, cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout)["results"])


def test_secrets_scan_finds_nothing_new(tally: Tally) -> None:
    baseline = json.loads((REPO / ".secrets.baseline").read_text())
    audited = {
        (path, finding["hashed_secret"])
        for path, findings in baseline["results"].items()
        for finding in findings
        if finding.get("is_secret") is False
    }
    results = _scan([], REPO)
    row = tally.row(AREA, "detect-secrets over the repository's tracked files")
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    for _ in tracked:
        row.tried += 1
    new = [
        f"{path}:{f['line_number']} {f['type']}"
        for path, findings in results.items()
        for f in findings
        if (path, f["hashed_secret"]) not in audited
    ]
    row.broke += len(new)
    row.outcomes["files"] = len(tracked)
    row.outcomes["audited false positives"] = sum(len(f) for f in results.values()) - len(new)
    row.outcomes["new findings"] = len(new)
    assert not new, (
        "detect-secrets found possible secrets: " + "; ".join(new) + ". Remove them, or, if "
        "they are test values, end the line with '# pragma: allowlist secret'."
    )


def test_secrets_scan_catches_a_planted_key(tmp_path: Path) -> None:
    planted = tmp_path / "settings.py"
    key_id = "AK" + "IA" + "J7Q2XW5VZ3MB6LKD"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "Q8uN2hXmR4sV"  # pragma: allowlist secret
    planted.write_text(f'AWS_ACCESS_KEY_ID = "{key_id}"\naws_secret_access_key = "{secret}"\n')
    results = _scan([str(planted)], tmp_path)
    types = {f["type"] for findings in results.values() for f in findings}
    assert "AWS Access Key" in types, results
