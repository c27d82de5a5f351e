"""Render `infra/template.yaml` with the current state machine definition and configuration.

`render_template(config)` returns the deployable template as a dict:

1. The ASL document is exactly what `python -m workflow render` prints (`render_json(config)`),
   except that every account-specific value the configuration derived (the SageMaker role ARN,
   the Lambda and CodeBuild names, the topic ARN, the bucket, the image repository URI) becomes a
   ``${Placeholder}`` resolved by the state machine's ``DefinitionSubstitutions`` to the stack's
   own resources. A value that would still name the configured account is an error.
2. The name parameters' defaults come from the configuration (`name`, `s3.prefix`,
   `ecr_repository`, `codebuild_project`, `lambdas.*`, `endpoint.name`, ...), so the stack's
   resources are called what `workflow.yaml` expects.

`write_rendered(config, output)` writes it as YAML and stages the Lambda bundle
(`workflow.errors`, `workflow.contracts` and `workflow.lambdas` plus a `requirements.txt`) in
``lambda/`` beside it, the ``CodeUri`` of every function; `sam build` and `sam deploy` take it
from there.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from workflow.checkout import container_dir
from workflow.config import WorkflowConfig
from workflow.infra_options import InfraError, add_configured_parts

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"
LAMBDA_DIR_NAME = "lambda"
# What the Lambda bundle needs beyond the Lambda runtime (which ships boto3): evaluate's mAP.
LAMBDA_REQUIREMENTS = ("pycocotools", "numpy")
_INTRINSIC_TAGS = (
    "Ref", "Condition", "Sub", "GetAtt", "GetAZs", "ImportValue", "Join", "Select", "Split",
    "FindInMap", "Base64", "Cidr", "If", "Not", "Equals", "And", "Or", "Transform", "ToJsonString",
    "Length",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# YAML with CloudFormation's short-form tags
# ---------------------------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """SafeLoader that turns ``!Ref x`` etc. into their long form ``{"Ref": x}``."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else ("Condition" if tag_suffix == "Condition" else None)
    key = name or f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Read a CloudFormation/SAM YAML template, short-form intrinsics expanded.

    Args:
        path: The template file.

    Returns:
        The template as plain data.

    Raises:
        InfraError: The file is missing or is not a YAML mapping with Resources.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InfraError(
            f"template {path} does not exist; run from a checkout of the project (it ships "
            "infra/template.yaml)."
        ) from exc
    data = yaml.load(text, Loader=_TemplateLoader)  # a SafeLoader subclass: no code runs
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise InfraError(f"{path} is not a CloudFormation template (no Resources mapping).")
    return data


def dump_template(template: Mapping[str, Any]) -> str:
    """Return the template as YAML (long-form intrinsics, key order kept)."""
    return str(yaml.safe_dump(dict(template), sort_keys=False, width=100, allow_unicode=True))


# ---------------------------------------------------------------------------------------------
# The definition with substitutions
# ---------------------------------------------------------------------------------------------


def substitutions(config: WorkflowConfig) -> dict[str, str]:
    """Map each account-specific value of the rendered ASL to its ``${Placeholder}``.

    The placeholder names are the keys of the state machine's ``DefinitionSubstitutions`` in
    `infra/template.yaml`.

    Args:
        config: The configuration the definition was rendered from.

    Returns:
        ``{literal value: "${Placeholder}"}``.
    """
    lambda_arn = f"arn:aws:lambda:{config.region}:{config.account_id}:function:{{}}"
    table = {
        config.roles.sagemaker: "${SageMakerRoleArn}",
        config.roles.state_machine: "${StateMachineRoleArn}",
        config.lambdas.start_build: "${StartBuildFunction}",
        config.lambdas.request_approval: "${RequestApprovalFunction}",
        config.lambdas.evaluate: "${EvaluateFunction}",
        lambda_arn.format(config.lambdas.start_build): "${StartBuildFunction}",
        lambda_arn.format(config.lambdas.request_approval): "${RequestApprovalFunction}",
        lambda_arn.format(config.lambdas.evaluate): "${EvaluateFunction}",
        config.codebuild_project: "${BuildProject}",
        config.s3.bucket: "${ArtifactBucket}",
        config.image_repository_uri: "${ImageRepositoryUri}",
    }
    if config.notification.topic_arn:
        table[config.notification.topic_arn] = "${NotificationTopicArn}"
    return table


def substitute_definition(definition: Any, config: WorkflowConfig) -> Any:
    """Return a copy of the ASL with account-specific string values replaced by placeholders.

    Whole string values are replaced (never substrings of free text such as a Comment), plus
    ``s3://<bucket>/...`` URIs. Afterwards no string may still contain the configured account ID.

    Args:
        definition: The ASL document (parsed JSON).
        config: The configuration it was rendered from.

    Returns:
        The substituted document.

    Raises:
        InfraError: A value still names the account, or the ASL already contains ``${``.
    """
    table = substitutions(config)
    bucket_prefix = f"s3://{config.s3.bucket}/"
    problems: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, str):
            return node
        if "${" in node:
            problems.append(
                f"{path} = {node!r} contains '${{', which DefinitionSubstitutions would read as a "
                "placeholder; remove it from the configuration value"
            )
            return node
        if node in table:
            return table[node]
        if node.startswith(bucket_prefix):
            return "s3://${ArtifactBucket}/" + node[len(bucket_prefix) :]
        if re.search(rf"(^|[^0-9]){re.escape(config.account_id)}([^0-9]|$)", node):
            problems.append(
                f"{path} = {node!r} names account {config.account_id} but is not a resource of the "
                "template; derive it from a templated resource or pass it in the execution input"
            )
        return node

    result = walk(definition, "$")
    if problems:
        raise InfraError("the definition cannot be templated: " + "; ".join(problems[:5]) + ".")
    return result


# ---------------------------------------------------------------------------------------------
# The template
# ---------------------------------------------------------------------------------------------


def _parameter_defaults(config: WorkflowConfig) -> dict[str, Any]:
    derived_bucket = f"{config.name}-{config.account_id}-{config.region}"
    return {
        "Name": config.name,
        "ArtifactPrefix": config.s3.prefix,
        "ArtifactBucketName": "" if config.s3.bucket == derived_bucket else config.s3.bucket,
        "ImageRepositoryName": config.ecr_repository,
        "CodeBuildProjectName": config.codebuild_project,
        "StartBuildFunctionName": config.lambdas.start_build,
        "RequestApprovalFunctionName": config.lambdas.request_approval,
        "EvaluateFunctionName": config.lambdas.evaluate,
        "EndpointName": config.endpoint.name,
        "ApprovalLinkTtlSeconds": config.approval.link_ttl_seconds,
        "ApprovalEmail": config.approval.email or "",
    }


def render_template(
    config: WorkflowConfig,
    definition_json: str | None = None,
    template_path: Path = TEMPLATE_PATH,
) -> dict[str, Any]:
    """Return the deployable template for `config`.

    Args:
        config: The loaded configuration.
        definition_json: The ASL to embed (default: `workflow.definition.render_json(config)`).
        template_path: The source template.

    Returns:
        The template as plain data (long-form intrinsics).

    Raises:
        InfraError: The template lacks the state machine, or the definition cannot be templated.
    """
    if definition_json is None:
        from workflow.definition import render_json  # the SDK import is slow: only when needed

        definition_json = render_json(config)
    template = load_template(template_path)
    machine = template["Resources"].get("StateMachine", {})
    properties = machine.get("Properties")
    if machine.get("Type") != "AWS::StepFunctions::StateMachine" or not isinstance(
        properties, dict
    ):
        raise InfraError(
            f"{template_path} has no AWS::StepFunctions::StateMachine resource named "
            "StateMachine; restore it from the repository."
        )
    definition = substitute_definition(json.loads(definition_json), config)
    used = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", json.dumps(definition)))
    known = set(properties.get("DefinitionSubstitutions", {}))
    if used - known:
        raise InfraError(
            f"the definition uses placeholders {sorted(used - known)} that {template_path} does "
            "not define in DefinitionSubstitutions; add them there."
        )
    properties["Definition"] = definition
    add_configured_parts(template, config)
    parameters = template.get("Parameters", {})
    for name, value in _parameter_defaults(config).items():
        if name in parameters:
            parameters[name]["Default"] = value
    return template


def read_parameters(path: Path, template: Mapping[str, Any]) -> dict[str, str]:
    """Read a CloudFormation parameters file (``[{"ParameterKey", "ParameterValue"}]``).

    Args:
        path: The JSON file, e.g. ``infra/parameters.json``.
        template: The template whose Parameters the keys must name.

    Returns:
        ``{key: value}``.

    Raises:
        InfraError: The file is missing, malformed, or names an unknown parameter.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InfraError(f"parameters file {path} does not exist; pass an existing file.") from exc
    except json.JSONDecodeError as exc:
        raise InfraError(f"{path} is not JSON ({exc.msg} at line {exc.lineno}); fix it.") from exc
    if not isinstance(data, list) or not all(
        isinstance(item, dict) and {"ParameterKey", "ParameterValue"} <= set(item) for item in data
    ):
        raise InfraError(
            f'{path} must be a JSON list of {{"ParameterKey": ..., "ParameterValue": ...}} '
            "objects, as `aws cloudformation create-stack --parameters file://` reads."
        )
    known = set(template.get("Parameters", {}))
    values = {str(item["ParameterKey"]): str(item["ParameterValue"]) for item in data}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InfraError(
            f"{path} sets unknown parameters {unknown}; the template has {sorted(known)}."
        )
    return values


# ---------------------------------------------------------------------------------------------
# Writing the template and the Lambda bundle
# ---------------------------------------------------------------------------------------------


def _requirements_lines() -> list[str]:
    lock = REPO_ROOT / "requirements.lock"
    pins: dict[str, str] = {}
    if lock.is_file():
        for line in lock.read_text(encoding="utf-8").splitlines():
            name, sep, version = line.strip().partition("==")
            if sep:
                pins[name.lower()] = f"{name}=={version}"
    return [pins.get(name, name) for name in LAMBDA_REQUIREMENTS]


def stage_lambda_bundle(destination: Path) -> Path:
    """Copy the Lambda code (workflow.errors, .contracts, .lambdas, mask_r_cnn.metrics) and its
    requirements.

    Args:
        destination: The bundle directory (must not exist).

    Returns:
        The bundle directory.
    """
    package = destination / "workflow"
    (package / "lambdas").mkdir(parents=True)
    # A minimal package root: the real workflow/__init__.py may import what Lambda lacks.
    (package / "__init__.py").write_text('"""Lambda bundle of the workflow package."""\n')
    for module in ("errors.py", "contracts.py"):  # the contracts the Lambdas share (stdlib only)
        shutil.copy2(PACKAGE_DIR / module, package / module)
    for source in sorted((PACKAGE_DIR / "lambdas").glob("*.py")):
        shutil.copy2(source, package / "lambdas" / source.name)
    # The one COCO mAP implementation (torch-free), which the evaluate Lambda imports.
    container = destination / "mask_r_cnn"
    container.mkdir()
    for module in ("__init__.py", "metrics.py"):
        shutil.copy2(container_dir() / "mask_r_cnn" / module, container / module)
    (destination / "requirements.txt").write_text("\n".join(_requirements_lines()) + "\n")
    return destination


def write_rendered(
    config: WorkflowConfig,
    output: Path,
    *,
    force: bool = False,
    definition_json: str | None = None,
) -> Path:
    """Write the rendered template to `output` and stage the Lambda bundle beside it.

    Args:
        config: The loaded configuration.
        output: The template file to write (e.g. ``build/infra/template.yaml``).
        force: Replace an existing template and bundle.
        definition_json: The ASL to embed (default: rendered from `config`).

    Returns:
        The written template path.

    Raises:
        InfraError: `output` or its bundle exists and `force` is false.
    """
    bundle = output.parent / LAMBDA_DIR_NAME
    existing = [str(p) for p in (output, bundle) if p.exists()]
    if existing and not force:
        raise InfraError(
            f"{' and '.join(existing)} already exist; choose another --output or pass --force "
            "to replace them."
        )
    text = dump_template(render_template(config, definition_json))
    output.parent.mkdir(parents=True, exist_ok=True)
    if bundle.exists():
        shutil.rmtree(bundle)
    stage_lambda_bundle(bundle)
    output.write_text(text, encoding="utf-8")
    logger.info("wrote %s and the Lambda bundle %s", output, bundle)
    return output
