"""Step Functions state machines: create, describe, list, update, delete, tags, versions, aliases.

State machines live in memory for the life of the server, as AWS keeps them for the life of an
account; their executions run on the local engine (:mod:`workflow.api.sfn_executions`). Shapes and
error codes follow the API reference,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_Operations.html.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from workflow.api.diagnostics import check_definition, check_name
from workflow.api.errors import ApiError, require, validation
from workflow.api.wire import page

TYPES = ("STANDARD", "EXPRESS")
_ARN_PREFIX = "arn:aws:states:"


def now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(tz=dt.timezone.utc)


def check_arn(value: Any, kind: str, member: str = "stateMachineArn") -> str:
    """Return ``value`` when it is a Step Functions ARN of ``kind``, else raise ``InvalidArn``."""
    text = str(value or "")
    parts = text.split(":")
    if not text.startswith(_ARN_PREFIX) or len(parts) < 7 or parts[5] != kind:
        raise ApiError("InvalidArn", f"Invalid Arn: '{text}' is not a valid {kind} ARN ({member})")
    return text


@dataclass
class Version:
    """One published, immutable version of a state machine."""

    number: int
    definition: str
    role_arn: str
    description: str
    created: dt.datetime
    revision_id: str


@dataclass
class Machine:
    """One state machine and what hangs off it."""

    name: str
    arn: str
    definition: str
    role_arn: str
    type: str
    created: dt.datetime
    revision_id: str
    description: str = ""
    logging: dict[str, Any] = field(default_factory=lambda: {"level": "OFF"})
    tracing: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[int, Version] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self, version: Version | None = None) -> dict[str, Any]:
        """The DescribeStateMachine shape (of ``version`` when given)."""
        source = version or self
        out = {
            "stateMachineArn": f"{self.arn}:{version.number}" if version else self.arn,
            "name": self.name,
            "status": "ACTIVE",
            "definition": source.definition,
            "roleArn": source.role_arn,
            "type": self.type,
            "creationDate": source.created,
            "loggingConfiguration": self.logging,
            "tracingConfiguration": self.tracing,
            "revisionId": source.revision_id,
        }
        if source.description:
            out["description"] = source.description
        return out


class StateMachines:
    """The state machines of one server (thread-safe)."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self._machines: dict[str, Machine] = {}
        self._lock = threading.Lock()

    # -- lookups ----------------------------------------------------------------------------
    def resolve(self, arn: Any) -> tuple[Machine, Version | None, str | None]:
        """Find the machine of a state machine, version or alias ARN.

        Returns:
            ``(machine, version or None, alias ARN or None)``; an alias resolves to the version
            its routing picks.

        Raises:
            ApiError: ``InvalidArn`` or ``StateMachineDoesNotExist``.
        """
        text = check_arn(arn, "stateMachine")
        parts = text.split(":")
        base, qualifier = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else None)
        with self._lock:
            machine = self._machines.get(base)
        if machine is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{text}'")
        if qualifier is None:
            return machine, None, None
        if qualifier.isdigit():
            version = machine.versions.get(int(qualifier))
            if version is None:
                raise ApiError(
                    "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{text}'"
                )
            return machine, version, None
        alias = machine.aliases.get(qualifier)
        if alias is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{text}'")
        return machine, _route(machine, alias), text

    def all(self) -> list[Machine]:
        """Every state machine, oldest first."""
        with self._lock:
            return list(self._machines.values())

    # -- operations -------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """CreateStateMachine (idempotent for an identical request, as on AWS)."""
        name = check_name(require(body, "name"))
        definition = str(require(body, "definition"))
        check_definition(definition)
        role = check_arn_any(require(body, "roleArn"), "roleArn")
        kind = str(body.get("type") or "STANDARD")
        if kind not in TYPES:
            raise validation(
                f"1 validation error detected: Value '{kind}' at 'type' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(TYPES)}]"
            )
        arn = f"{_ARN_PREFIX}{self.region}:{self.account_id}:stateMachine:{name}"
        with self._lock:
            existing = self._machines.get(arn)
            if existing is not None:
                if (existing.definition, existing.role_arn, existing.type) != (
                    definition,
                    role,
                    kind,
                ):
                    raise ApiError(
                        "StateMachineAlreadyExists",
                        f"State Machine Already Exists: '{arn}'",
                    )
                return {"stateMachineArn": arn, "creationDate": existing.created}
            machine = Machine(
                name=name,
                arn=arn,
                definition=definition,
                role_arn=role,
                type=kind,
                created=now(),
                revision_id=uuid.uuid4().hex,
                description=str(body.get("versionDescription") or ""),
                logging=body.get("loggingConfiguration") or {"level": "OFF"},
                tracing=body.get("tracingConfiguration") or {"enabled": False},
                tags={t["key"]: t.get("value", "") for t in body.get("tags") or []},
            )
            self._machines[arn] = machine
        out: dict[str, Any] = {"stateMachineArn": arn, "creationDate": machine.created}
        if body.get("publish"):
            out["stateMachineVersionArn"] = self._publish(machine, machine.description)
        return out

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeStateMachine (of a state machine or a version ARN)."""
        machine, version, _ = self.resolve(require(body, "stateMachineArn"))
        return machine.describe(version)

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListStateMachines, sorted by name as AWS lists them."""
        machines = sorted(self.all(), key=lambda m: m.name)
        chunk, token = page(machines, body, "list-state-machines")
        items = [
            {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": m.created}
            for m in chunk
        ]
        return {"stateMachines": items, "nextToken": token}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        """UpdateStateMachine: definition, role, logging, tracing; ``publish`` makes a version."""
        machine, version, _ = self.resolve(require(body, "stateMachineArn"))
        if version is not None:
            raise validation("Versions are immutable; update the state machine's own ARN")
        changes = [k for k in ("definition", "roleArn", "loggingConfiguration") if k in body]
        if not changes and "tracingConfiguration" not in body:
            raise ApiError(
                "MissingRequiredParameter",
                "Either the definition, the roleArn, the loggingConfiguration or the "
                "tracingConfiguration must be specified",
            )
        if "definition" in body:
            check_definition(str(body["definition"]))
            machine.definition = str(body["definition"])
        if "roleArn" in body:
            machine.role_arn = check_arn_any(body["roleArn"], "roleArn")
        machine.logging = body.get("loggingConfiguration") or machine.logging
        machine.tracing = body.get("tracingConfiguration") or machine.tracing
        machine.revision_id = uuid.uuid4().hex
        out: dict[str, Any] = {"updateDate": now(), "revisionId": machine.revision_id}
        if body.get("publish"):
            description = str(body.get("versionDescription") or "")
            out["stateMachineVersionArn"] = self._publish(machine, description)
        return out

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeleteStateMachine (an unknown ARN is not an error on AWS either)."""
        arn = check_arn(require(body, "stateMachineArn"), "stateMachine")
        with self._lock:
            self._machines.pop(arn, None)
        return {}

    # -- tags -------------------------------------------------------------------------------
    def tag(self, body: dict[str, Any]) -> dict[str, Any]:
        """TagResource."""
        machine, _, _ = self._tagged(body)
        machine.tags.update({t["key"]: t.get("value", "") for t in body.get("tags") or []})
        return {}

    def untag(self, body: dict[str, Any]) -> dict[str, Any]:
        """UntagResource."""
        machine, _, _ = self._tagged(body)
        for key in body.get("tagKeys") or []:
            machine.tags.pop(key, None)
        return {}

    def list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListTagsForResource."""
        machine, _, _ = self._tagged(body)
        return {"tags": [{"key": k, "value": v} for k, v in machine.tags.items()]}

    def _tagged(self, body: dict[str, Any]) -> tuple[Machine, Version | None, str | None]:
        arn = require(body, "resourceArn")
        try:
            return self.resolve(arn)
        except ApiError as exc:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'") from exc

    # -- versions and aliases ---------------------------------------------------------------
    def publish(self, body: dict[str, Any]) -> dict[str, Any]:
        """PublishStateMachineVersion."""
        machine, _, _ = self.resolve(require(body, "stateMachineArn"))
        revision = body.get("revisionId")
        if revision and revision != machine.revision_id:
            raise ApiError(
                "ConflictException",
                f"revisionId {revision} is not the current revision {machine.revision_id}",
            )
        arn = self._publish(machine, str(body.get("description") or ""))
        return {"stateMachineVersionArn": arn, "creationDate": now()}

    def _publish(self, machine: Machine, description: str) -> str:
        latest = machine.versions.get(max(machine.versions)) if machine.versions else None
        if latest is not None and latest.revision_id == machine.revision_id:
            return f"{machine.arn}:{latest.number}"  # nothing changed: AWS returns the latest
        number = max(machine.versions, default=0) + 1
        machine.versions[number] = Version(
            number,
            machine.definition,
            machine.role_arn,
            description,
            now(),
            machine.revision_id,
        )
        return f"{machine.arn}:{number}"

    def list_versions(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListStateMachineVersions, newest first."""
        machine, _, _ = self.resolve(require(body, "stateMachineArn"))
        versions = sorted(machine.versions.values(), key=lambda v: -v.number)
        chunk, token = page(versions, body, f"versions:{machine.arn}")
        items = [
            {"stateMachineVersionArn": f"{machine.arn}:{v.number}", "creationDate": v.created}
            for v in chunk
        ]
        return {"stateMachineVersions": items, "nextToken": token}

    def delete_version(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeleteStateMachineVersion (refused while an alias routes to it)."""
        machine, version, _ = self.resolve(require(body, "stateMachineVersionArn"))
        if version is None:
            raise validation("stateMachineVersionArn must name a version (…:stateMachine:NAME:N)")
        for alias in machine.aliases.values():
            if any(
                r["stateMachineVersionArn"].endswith(f":{version.number}") for r in alias["routing"]
            ):
                raise ApiError(
                    "ConflictException",
                    f"Version {version.number} is referenced by alias {alias['name']}; "
                    "update or delete the alias first",
                )
        machine.versions.pop(version.number, None)
        return {}

    def create_alias(self, body: dict[str, Any]) -> dict[str, Any]:
        """CreateStateMachineAlias."""
        name = check_name(require(body, "name"), "alias")
        routing = _routing(self, require(body, "routingConfiguration"))
        machine = routing[0][0]
        arn = f"{machine.arn}:{name}"
        machine.aliases[name] = {
            "name": name,
            "arn": arn,
            "routing": [r for _, r in routing],
            "description": str(body.get("description") or ""),
            "created": now(),
        }
        return {"stateMachineAliasArn": arn, "creationDate": machine.aliases[name]["created"]}

    def describe_alias(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeStateMachineAlias."""
        alias = self._alias(body)
        return {
            "stateMachineAliasArn": alias["arn"],
            "name": alias["name"],
            "description": alias["description"],
            "routingConfiguration": alias["routing"],
            "creationDate": alias["created"],
        }

    def update_alias(self, body: dict[str, Any]) -> dict[str, Any]:
        """UpdateStateMachineAlias."""
        alias = self._alias(body)
        if "routingConfiguration" in body:
            alias["routing"] = [r for _, r in _routing(self, body["routingConfiguration"])]
        if "description" in body:
            alias["description"] = str(body["description"])
        return {"updateDate": now()}

    def delete_alias(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeleteStateMachineAlias."""
        alias = self._alias(body)
        machine, _, _ = self.resolve(alias["arn"].rsplit(":", 1)[0])
        machine.aliases.pop(alias["name"], None)
        return {}

    def list_aliases(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListStateMachineAliases."""
        machine, _, _ = self.resolve(require(body, "stateMachineArn"))
        aliases = sorted(machine.aliases.values(), key=lambda a: a["name"])
        chunk, token = page(aliases, body, f"aliases:{machine.arn}")
        items = [{"stateMachineAliasArn": a["arn"], "creationDate": a["created"]} for a in chunk]
        return {"stateMachineAliases": items, "nextToken": token}

    def _alias(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = check_arn(require(body, "stateMachineAliasArn"), "stateMachine")
        machine, _, _ = self.resolve(arn.rsplit(":", 1)[0])
        alias = machine.aliases.get(arn.rsplit(":", 1)[1])
        if alias is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        return alias


def check_arn_any(value: Any, member: str) -> str:
    """Return an ARN-looking value or raise ``InvalidArn`` (role ARNs are not checked further)."""
    text = str(value or "")
    if not text.startswith("arn:") or len(text.split(":")) < 6:
        raise ApiError("InvalidArn", f"Invalid Arn: '{text}' is not an ARN ({member})")
    return text


def _routing(machines: StateMachines, routing: Any) -> list[tuple[Machine, dict[str, Any]]]:
    if not isinstance(routing, list) or not 1 <= len(routing) <= 2:
        raise validation("routingConfiguration must list one or two versions")
    resolved = []
    for entry in routing:
        machine, version, _ = machines.resolve(entry.get("stateMachineVersionArn"))
        if version is None:
            raise validation("routingConfiguration must name versions (…:stateMachine:NAME:N)")
        resolved.append((machine, {**entry, "weight": int(entry.get("weight", 0))}))
    if sum(r["weight"] for _, r in resolved) != 100:
        raise validation("The weights of routingConfiguration must add up to 100")
    if len({m.arn for m, _ in resolved}) != 1:
        raise validation("The versions of an alias must belong to one state machine")
    return resolved


def _route(machine: Machine, alias: dict[str, Any]) -> Version | None:
    roll = random.uniform(0, 100)
    for entry in alias["routing"]:
        roll -= entry["weight"]
        if roll <= 0:
            return machine.versions.get(int(entry["stateMachineVersionArn"].rsplit(":", 1)[1]))
    last = alias["routing"][-1]["stateMachineVersionArn"]
    return machine.versions.get(int(last.rsplit(":", 1)[1]))


__all__ = ["Machine", "StateMachines", "Version", "check_arn", "check_arn_any", "now"]
