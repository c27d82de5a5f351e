"""invoke_sfn.py as CodeBuild runs it: buildspec arguments, template env, only the install phase's packages."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:0123456-20261121193000"

# Run invoke_sfn.py with every import outside the stdlib, infra/invoke-requirements.txt and the
# project itself (`pip install --no-deps -e .` installs `workflow` and the torch-free parts of
# `mask_r_cnn`, whose contract the definition imports) refused, so a new dependency of the start
# path fails here instead of in CodeBuild.
RESTRICTED_RUN = r"""
import importlib.abc, runpy, sys
allowed = set(sys.stdlib_module_names) | {
    "workflow", "boto3", "botocore", "jmespath", "dateutil", "yaml", "_yaml", "s3transfer",
    "six", "urllib3", "pydantic", "pydantic_core", "pydantic_settings", "annotated_types",
    "typing_extensions", "typing_inspection", "dotenv", "click",
}
project = {"mask_r_cnn", "mask_r_cnn.contract"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        # _sysconfigdata_*: the interpreter's build data (stdlib, not listed in stdlib_module_names)
        if (name.partition(".")[0] not in allowed and name not in project
                and not name.startswith("_sysconfigdata_")):
            raise ModuleNotFoundError(f"{name} is not installed by CodeBuild's install phase")
        return None
sys.meta_path.insert(0, Refuse())
sys.argv = ["invoke_sfn.py", *sys.argv[1:]]
runpy.run_path("invoke_sfn.py", run_name="__main__")
"""


@pytest.fixture
def sfn_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are process-wide: start from an empty account.
    reset = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(reset, timeout=10).read()
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    try:
        yield url
    finally:
        server.stop()


def template_env() -> dict[str, str]:
    """The MLOPS_* variables the template's CodeBuild project sets, with a stack's values."""
    text = (REPO / "infra" / "template.yaml").read_text()
    start = text.index("        EnvironmentVariables:")
    names = [line.split("Name: ")[1].split(",")[0] for line in text[start:].splitlines()[1:20]
             if "Name: MLOPS_" in line]  # fmt: skip
    values = {
        "MLOPS_NAME": "mask-r-cnn-mlops",
        "MLOPS_REGION": "us-east-1",
        "MLOPS_ACCOUNT_ID": "123456789012",
        "MLOPS_S3__BUCKET": "stack-bucket",
        "MLOPS_S3__PREFIX": "mask-r-cnn",
        "MLOPS_ECR_REPOSITORY": "mask-r-cnn",
        "MLOPS_CODEBUILD_PROJECT": "mask-r-cnn-mlops-build",
        "MLOPS_ENDPOINT__NAME": "mask-r-cnn",
    }
    assert sorted(names) == sorted(values), "the template's MLOPS_* variables changed"
    return values


def buildspec_invoke_args() -> list[str]:
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    (command,) = [c for c in spec["phases"]["post_build"]["commands"] if "invoke_sfn.py" in c]
    assert 'python invoke_sfn.py --image-uri "$IMAGE_URI" --commit "$COMMIT_ID"' in command
    return ["--image-uri", IMAGE, "--commit", COMMIT]


@pytest.mark.integration
@pytest.mark.parametrize(("image", "code"), [(IMAGE, 0), (None, 1)])
def test_invoke_sfn_with_codebuild_env_and_install_phase_packages(
    sfn_server: str, tmp_path: Path, image: str | None, code: int
) -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=sfn_server)
    states: dict[str, Any] = {
        "CheckImage": {"Type": "Choice", "Default": "NoImage",
                       "Choices": [{"Variable": "$.ImageUri", "IsPresent": True, "Next": "Done"}]},
        "NoImage": {"Type": "Fail", "Error": "BuildFailed", "Cause": "no image"},
        "Done": {"Type": "Succeed"},
    }  # fmt: skip
    machine = client.create_state_machine(
        name="mask-r-cnn-mlops",
        definition=json.dumps({"StartAt": "CheckImage", "States": states}),
        roleArn="arn:aws:iam::123456789012:role/mask-r-cnn-mlops-state_machine",
    )["stateMachineArn"]
    args = buildspec_invoke_args()
    if image is None:
        args = args[2:]  # the variant where the image is missing fails the execution
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SFN": sfn_server,
        "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT,
        "CODEBUILD_BUILD_ID": "mask-r-cnn-mlops-build:1111",
        "STATE_MACHINE_ARN": machine,
        "ECR_REPOSITORY": "mask-r-cnn",
        **template_env(),
    }
    result = subprocess.run(
        [sys.executable, "-c", RESTRICTED_RUN, *args, "--poll-seconds", "0.2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "is not installed by CodeBuild's install phase" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    (execution,) = client.list_executions(stateMachineArn=machine)["executions"]
    data = json.loads(client.describe_execution(executionArn=execution["executionArn"])["input"])
    assert data["CommitId"] == COMMIT
    assert data["TrainingData"].startswith("s3://stack-bucket/mask-r-cnn/")  # from MLOPS_S3__BUCKET
    if image:
        assert data["ImageUri"] == IMAGE
        assert result.stdout.strip() == execution["executionArn"]
    else:
        assert "ImageUri" not in data
        assert "BuildFailed" in result.stderr
