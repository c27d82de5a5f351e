"""The ``.py`` notebooks (jupytext percent format) and their papermill parameters.

`find_notebooks` lists ``NN_*.py`` of a folder, `read_notebook` reads one and its ``parameters``
cell, `parse_value` types a ``-p`` value like papermill does, and `notebook_parameters` picks the
values a notebook declares (``--set`` entries merged into its ``overrides``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import ConfigError, WorkflowError

KERNEL_NAME = "python3"
NOTEBOOK_PATTERN = "[0-9][0-9]_*.py"


class NotebookRunError(WorkflowError):
    """A notebook failed (a cell raised, timed out, or the kernel died) or cannot be run."""


def parse_value(text: str) -> Any:
    """Type a ``-p`` value like papermill does, plus JSON objects and lists.

    ``True``/``False``/``None`` -> bool/None, ``3`` -> int, ``0.5`` -> float, ``{...}``/``[...]``
    -> parsed JSON (or a Python literal), anything else -> the string itself.

    Raises:
        ConfigError: When a value that starts with ``{`` or ``[`` is neither JSON nor a literal.
    """
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.strip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ConfigError(
                    [
                        f"-p value {text!r} looks like a mapping or list but is neither JSON nor "
                        f"a Python literal ({exc}); write e.g. '{{\"gate.threshold\": 0.0}}' or "
                        "pass it with -r as a string"
                    ],
                    source="command line",
                ) from exc
    return text


@dataclass(frozen=True)
class Notebook:
    """A ``.py`` notebook, read with jupytext."""

    path: Path
    node: Any
    parameters: Mapping[str, str]  # name -> default source text

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name


def read_notebook(path: Path) -> Notebook:
    """Read a percent-format ``.py`` notebook and its ``parameters`` cell.

    Raises:
        NotebookRunError: When it has no cell tagged ``parameters``.
    """
    import jupytext
    from papermill.translators import PythonTranslator

    node = jupytext.read(path)
    node.metadata.setdefault(
        "kernelspec", {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    )
    cells = [c for c in node.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise NotebookRunError(
            f"{path} has no cell tagged 'parameters'; start one cell with "
            "'# %% tags=[\"parameters\"]' so that papermill can inject values"
        )
    parameters = {p.name: p.default for p in PythonTranslator.inspect(cells[0])}
    return Notebook(path=path, node=node, parameters=parameters)


def find_notebooks(folder: Path, only: Sequence[str]) -> list[Path]:
    """Return the ``NN_*.py`` notebooks of ``folder`` in order (those named by ``only``).

    Raises:
        ConfigError: When the folder holds none, or ``only`` names one that does not exist.
    """
    paths = sorted(folder.glob(NOTEBOOK_PATTERN))
    if not paths:
        raise ConfigError(
            [f"{folder} holds no notebooks ({NOTEBOOK_PATTERN}); pass --notebooks DIR"],
            source="command line",
        )
    if not only:
        return paths
    wanted = {Path(n).name.removesuffix(".py") for n in only}
    unknown = sorted(wanted - {p.stem for p in paths})
    if unknown:
        raise ConfigError(
            [
                f"--only {name} is not a notebook of {folder} (known: "
                f"{', '.join(p.stem for p in paths)})"
                for name in unknown
            ],
            source="command line",
        )
    return [p for p in paths if p.stem in wanted]


def notebook_parameters(
    notebook: Notebook, given: Mapping[str, Any], set_overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the parameters one notebook gets: those it declares, ``overrides`` merged."""
    values = {k: v for k, v in given.items() if k in notebook.parameters}
    if set_overrides and "overrides" in notebook.parameters:
        base = values.get("overrides")
        if base is None:
            try:
                base = ast.literal_eval(notebook.parameters["overrides"])
            except (ValueError, SyntaxError) as exc:
                raise NotebookRunError(
                    f"{notebook.path}: the default of 'overrides' is not a literal mapping "
                    f"({exc}); write it as a dict literal so that --set can extend it"
                ) from exc
        values["overrides"] = {**dict(base or {}), **set_overrides}
    return values


__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK_PATTERN",
    "Notebook",
    "NotebookRunError",
    "find_notebooks",
    "notebook_parameters",
    "parse_value",
    "read_notebook",
]
