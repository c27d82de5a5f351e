"""Jenkinsfile: declarative structure, the stages the issue asks for, no keys, every `sh` exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TEXT = (REPO / "Jenkinsfile").read_text()


def block(text: str, opener: str) -> str:
    """Return the body of the first `opener {` ... matching `}` (strings and comments aware)."""
    match = re.search(re.escape(opener) + r"\s*\{", text)
    assert match, f"Jenkinsfile has no '{opener} {{' block"
    depth, i, quote = 1, match.end(), ""
    while depth:
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif text.startswith(quote, i):
                quote = ""
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        i += 1
    return text[match.end() : i - 1]


def code_only(text: str) -> str:
    return "\n".join(
        line.split("//")[0] if "://" not in line else line for line in text.splitlines()
    )


PIPELINE = block(TEXT, "pipeline")


def stage_names() -> list[str]:
    return re.findall(r"stage\('([^']+)'\)", block(PIPELINE, "stages"))


def test_declarative_sections() -> None:
    assert TEXT.lstrip().startswith("//")  # documented header
    for section in ("agent", "parameters", "triggers", "options", "stages", "post"):
        assert re.search(rf"^\s{{4}}{section}\b", PIPELINE, re.M), section
    for name in stage_names():
        body = block(PIPELINE, f"stage('{name}')")
        assert re.search(r"\bsteps\s*\{", body), f"stage {name} has no steps"


def test_stages_in_order() -> None:
    assert stage_names() == [
        "Checkout", "Test", "Notebooks", "Render", "Publish evidence", "CodeBuild", "Result",
    ]  # fmt: skip
    assert "checkout scm" in block(PIPELINE, "stage('Checkout')")
    assert "sh 'make test'" in block(PIPELINE, "stage('Test')")
    assert "sh 'make notebooks'" in block(PIPELINE, "stage('Notebooks')")


def test_triggers_poll_scm_fallback_and_codecommit_trigger_documented() -> None:
    assert re.search(r"pollSCM\('H/\d+ \* \* \* \*'\)", block(PIPELINE, "triggers"))
    header = TEXT.split("pipeline {")[0]
    for words in ("AWS CodeCommit Trigger", "SNS topic", "SQS queue", "pollSCM"):
        assert words in header, words


def test_codebuild_step_takes_project_region_credentials_and_commit() -> None:
    call = block(PIPELINE, "stage('CodeBuild')")
    call = call[call.index("awsCodeBuild(") :]
    call = call[: call.index(")\n")]
    assert "projectName: params.CODEBUILD_PROJECT" in call
    assert "region: params.AWS_REGION" in call
    assert "credentialsType: 'jenkins'" in call
    assert "credentialsId: params.AWS_CREDENTIALS_ID" in call
    assert "sourceVersion: env.COMMIT_ID" in call
    assert "{ COMMIT_ID, ${env.COMMIT_ID} }" in call
    params = block(PIPELINE, "parameters")
    for name in ("CODEBUILD_PROJECT", "AWS_REGION", "AWS_CREDENTIALS_ID"):
        assert f"name: '{name}'" in params


def test_post_publishes_junit_artifacts_and_notifies_failure() -> None:
    post = block(PIPELINE, "post")
    assert "junit " in block(post, "always") and "reports/junit/*.xml" in post
    assert "archiveArtifacts" in block(post, "always")
    assert re.search(r"\bmail to:", block(post, "failure"))
    # make test writes the JUnit file that `junit` reads.
    assert "PYTEST_ADDOPTS = '--junitxml=reports/junit/pytest.xml'" in block(
        PIPELINE, "environment"
    )


def test_no_credentials_in_the_file() -> None:
    code = code_only(TEXT)
    assert not re.search(r"AKIA[0-9A-Z]{16}", TEXT)
    assert not re.search(r"[A-Za-z0-9/+]{40}", code)  # secret-key shaped strings
    for word in ("awsAccessKey", "awsSecretKey", "awsSessionToken", "credentialsType: 'keys'"):
        assert word not in code, word
    assert "withCredentials([aws(credentialsId: params.AWS_CREDENTIALS_ID" in code


def test_every_sh_command_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    commands = re.findall(r"""\bsh\s*\(?\s*(?:script:\s*)?(['"])(.+?)\1""", TEXT)
    assert len(commands) >= 5
    for _, command in commands:
        for target in re.findall(r"\bmake (\S+)", command):
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"
        for script in re.findall(r"(scripts/[\w.-]+)", command):
            path = REPO / script
            assert path.is_file() and path.stat().st_mode & 0o111, (
                f"{script} missing or not executable"
            )
        for module_command in re.findall(r"-m workflow (\w+)", command):
            from workflow.cli import build_cli

            assert module_command in build_cli().commands
