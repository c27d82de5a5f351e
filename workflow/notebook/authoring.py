"""Edit and inspect the SDK ``Workflow`` a notebook authors with the Step Functions Data Science SDK.

- :func:`insert_step_after` / :func:`state_names`: edit and inspect the SDK ``Workflow`` that
  :func:`workflow.definition.build_workflow` returns (stages are switched on and off, and
  reconfigured, through the configuration: :meth:`Session.reconfigure`).
- :func:`with_client`, :func:`document_of`, :func:`compare_workflows`, :func:`check`,
  :func:`graph_png`: bind a client, read the ASL, compare, validate and draw it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow.notebook.session import NotebookError
from workflow.notebook.tables import Table


class _Collect:
    """A `stepfunctions` graph visitor that keeps the state objects by name."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}

    def is_visited(self, state: Any) -> bool:
        return state.state_id in self.states

    def visit(self, state: Any) -> None:
        self.states[state.state_id] = state


def sdk_states(workflow: Any) -> dict[str, Any]:
    """Return the SDK state objects of a ``Workflow``, by state name."""
    collector = _Collect()
    workflow.definition.branch.accept(collector)
    return collector.states


def state_names(workflow: Any) -> list[str]:
    """Return the state names of a ``Workflow``'s ASL document, in document order."""
    return list(json.loads(workflow.definition.to_json())["States"])


def insert_step_after(workflow: Any, after: str, step: Any) -> Any:
    """Return a new ``Workflow`` with ``step`` inserted after the state named ``after``.

    The states of ``workflow`` are shared with the result (rebuild the original with
    ``build_workflow`` when you need both).

    Args:
        workflow: The SDK workflow (``build_workflow(config, client=...)``).
        after: The name of a Task or Pass state.
        step: A new SDK state, e.g. ``stepfunctions.steps.Pass("RecordDataset", ...)``.

    Raises:
        NotebookError: When ``after`` does not exist, is a Choice or terminal state, or the
            step's name is taken.
    """
    from stepfunctions.workflow import Workflow

    states = sdk_states(workflow)
    if after not in states:
        raise NotebookError(
            f"there is no state {after!r} to insert after; the states are "
            f"{', '.join(sorted(states))}."
        )
    if step.state_id in states:
        raise NotebookError(
            f"a state named {step.state_id!r} exists already; give the new step another name."
        )
    previous = states[after]
    if previous.type in ("Choice", "Succeed", "Fail"):
        raise NotebookError(
            f"{after!r} is a {previous.type} state, after which nothing can be chained; insert "
            "after a Task or Pass state."
        )
    following = previous.next_step
    if following is not None:
        step.next(following)
    previous.next(step)
    return Workflow(
        name=workflow.name,
        definition=workflow.definition.branch,
        role=workflow.role,
        timeout_seconds=workflow.timeout_seconds,
        comment=workflow.comment,
        client=workflow.client,
    )


def with_client(workflow: Any, client: Any) -> Any:
    """Return a ``Workflow`` with the same definition that talks to ``client``."""
    from stepfunctions.workflow import Workflow

    return Workflow(
        name=workflow.name,
        definition=workflow.definition,
        role=workflow.role,
        timeout_seconds=workflow.timeout_seconds,
        comment=workflow.comment,
        client=client,
    )


def document_of(workflow: Any) -> dict[str, Any]:
    """Return the ASL document of a ``Workflow`` as a dict."""
    document: dict[str, Any] = json.loads(workflow.definition.to_json())
    return document


def compare_workflows(before: Any, after: Any) -> Table:
    """Return the states added, removed or changed between two workflows."""
    old, new = document_of(before)["States"], document_of(after)["States"]
    rows = []
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new:
            rows.append([name, "removed", old[name].get("Type")])
        elif name not in old:
            rows.append([name, "added", new[name].get("Type")])
        elif old[name] != new[name]:
            changed = sorted(
                k for k in {*old[name], *new[name]} if old[name].get(k) != new[name].get(k)
            )
            rows.append([name, "changed: " + ", ".join(changed), new[name].get("Type")])
    return Table(["state", "change", "type"], rows, title="differences")


def check(workflow: Any, source: str = "the workflow") -> list[str]:
    """Validate a workflow's ASL offline (structure and task Parameters); return the states.

    Raises:
        ValidationError: With every problem found.
    """
    from workflow.errors import ValidationError
    from workflow.validate import validate_definition

    document = document_of(workflow)
    problems = validate_definition(document)
    if problems:
        raise ValidationError(problems, source=source)
    return list(document["States"])


def graph_png(workflow: Any, folder: Path, name: str = "") -> Path:
    """Draw a workflow's graph offline (``python -m workflow render --graph``) into a new PNG.

    Args:
        workflow: The SDK workflow.
        folder: Where to write; an existing file is never overwritten (a number is appended).
        name: The file stem (default: the workflow's name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = name or workflow.name
    path = folder / f"{stem}.png"
    number = 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}.png"
    from workflow.graph import draw_graph

    draw_graph(document_of(workflow), path)
    return path
