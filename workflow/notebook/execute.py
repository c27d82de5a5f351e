"""Executing the notebooks with papermill: the plan, the kernel, each run and its failure line.

`plan_notebooks` checks everything before a cell runs (the notebooks exist and declare the given
parameters, the outputs are free); `run_notebooks` executes them in order with the ``python3``
kernel of this environment into ``.ipynb`` files and stops the local endpoints they leave running.
A failing cell becomes one line naming the notebook, the line of the cell in the ``.py`` file and
the error (`describe_failure`); the executed notebook keeps the traceback.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import ConfigError
from workflow.notebook.sources import (
    KERNEL_NAME,
    Notebook,
    NotebookRunError,
    find_notebooks,
    notebook_parameters,
    read_notebook,
)

DEFAULT_TIMEOUT = 1800


def check_kernel() -> None:
    """Make sure the ``python3`` kernel runs this interpreter.

    jupyter_client starts a kernelspec whose ``argv[0]`` is ``python`` with the current
    interpreter; a spec naming another interpreter (e.g. a ``--user`` install) would silently run
    the notebooks in another environment.

    Raises:
        NotebookRunError: When no such kernel exists or it names another interpreter.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = f"run '{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME}'"
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as exc:
        raise NotebookRunError(f"there is no Jupyter kernel named {KERNEL_NAME!r}; {fix}") from exc
    program = spec.argv[0] if spec.argv else ""
    if program in ("python", "python3", "{python}"):
        return
    if Path(program).resolve() != Path(sys.executable).resolve():
        raise NotebookRunError(
            f"the Jupyter kernel {KERNEL_NAME!r} ({spec.resource_dir}) runs {program}, not this "
            f"environment's {sys.executable}; {fix}"
        )


def cell_line(path: Path, source: str) -> int | None:
    """Return the line of ``path`` where a cell's source starts (None when not found)."""
    first = next((line for line in source.splitlines() if line.strip()), "")
    if not first:
        return None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line == first:
            return number
    return None


_CELL_FRAME = re.compile(r"Cell In\[\d+\], line (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def describe_failure(notebook: Notebook, output: Path, exc: BaseException) -> str:
    """Return the one-line message of a failed notebook: file:line, cell, error, output."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        source_lines = exc.source.splitlines()
        offset = 1
        for frame in exc.traceback or []:
            match = _CELL_FRAME.search(_ANSI.sub("", str(frame)))
            if match:
                offset = int(match.group(1))
                break
        start = cell_line(notebook.path, exc.source)
        where = _display_path(notebook.path)
        if start is not None:
            where += f":{start + offset - 1}"
        code = source_lines[offset - 1].strip() if 0 < offset <= len(source_lines) else ""
        evalue = " ".join(str(exc.evalue).split()).rstrip(".")
        return (
            f"{where}: cell {exc.cell_index} ({code[:70]}) raised {exc.ename}: {evalue}; "
            f"executed notebook: {_display_path(output)}"
        )
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return (
        f"{_display_path(notebook.path)}: {type(exc).__name__}: {text[:400]}; "
        f"executed notebook: {_display_path(output)}"
    )


def execute(
    notebook: Notebook,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    cwd: Path,
    timeout: int,
    log_output: bool,
) -> float:
    """Execute one notebook into ``output``; return the seconds it took.

    Raises:
        NotebookRunError: When a cell fails, a cell times out or the kernel dies.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillException

    started = time.monotonic()
    try:
        papermill.execute_notebook(
            notebook.node,
            str(output),
            parameters=dict(parameters),
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            log_output=log_output,
            execution_timeout=timeout,
        )
    except (PapermillException, CellTimeoutError, DeadKernelError, RuntimeError) as exc:
        raise NotebookRunError(describe_failure(notebook, output, exc)) from exc
    return time.monotonic() - started


def notebooks_folder(given: str | Path | None, cwd: Path) -> Path:
    """``given``, else the checkout's notebooks/, else ``./notebooks``."""
    from workflow.checkout import CheckoutError, notebooks_dir

    if given:
        return Path(given)
    try:
        folder = notebooks_dir()
    except CheckoutError:
        folder = cwd / "notebooks"
    if not folder.is_dir() and (cwd / "notebooks").is_dir():
        folder = cwd / "notebooks"
    return folder


@dataclass(frozen=True)
class NotebookPlan:
    """The notebooks to run, each one's parameters, and where they go; checked up front."""

    notebooks: Sequence[Notebook]
    parameters: Mapping[str, Mapping[str, Any]]  # notebook file name -> its parameters
    output_dir: Path
    root: Path  # the local store (its endpoints are stopped at the end)
    cwd: Path  # the notebooks' working directory


def plan_notebooks(
    folder: Path,
    *,
    only: Sequence[str] = (),
    given: Mapping[str, Any] | None = None,
    set_overrides: Mapping[str, Any] | None = None,
    default_root: str,
    config_file: str | None = None,
    output: Path | None = None,
    cwd: Path | None = None,
) -> NotebookPlan:
    """Check and plan a run of the notebooks of ``folder`` in local mode.

    Args:
        folder: The folder of the ``NN_*.py`` notebooks.
        only: Run only these (file names or stems).
        given: Parameters for every notebook that declares them (``mode`` defaults to ``local``,
            ``root`` to ``default_root``).
        set_overrides: Configuration keys merged into each notebook's ``overrides``.
        default_root: The local store when ``given`` has no ``root`` (``local.root``).
        config_file: Passed as ``config_file`` unless ``given`` has one.
        output: The folder of the executed notebooks (default ``<folder>/output/<UTC time>/``).
        cwd: The notebooks' working directory (default: the current one).

    Returns:
        The plan `run_notebooks` executes.

    Raises:
        ConfigError: A parameter no notebook declares, or an output that exists already.
        NotebookRunError: A notebook without a ``parameters`` cell.
    """
    cwd = cwd or Path.cwd()
    paths = find_notebooks(folder, only)
    notebooks = [read_notebook(path) for path in paths]
    values = dict(given or {})
    declared = {name for nb in notebooks for name in nb.parameters}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ConfigError(
            [
                f"-p {name} is not a parameter of {', '.join(p.name for p in paths)} (they "
                f"declare: {', '.join(sorted(declared))})"
                for name in unknown
            ],
            source="command line",
        )
    values.setdefault("mode", "local")
    root = Path(str(values.get("root") or default_root)).expanduser()
    root = root if root.is_absolute() else (cwd / root).resolve()
    values["root"] = str(root)
    if config_file and "config_file" not in values:
        values["config_file"] = str(Path(config_file).resolve())
    stamp = dt.datetime.now(tz=dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    output_dir = output if output is not None else folder / "output" / stamp
    taken = [
        output_dir / f"{p.stem}.ipynb" for p in paths if (output_dir / f"{p.stem}.ipynb").exists()
    ]
    if taken:
        raise ConfigError(
            [
                f"{path} exists already and is never overwritten; pass another --output folder"
                for path in taken
            ],
            source="command line",
        )
    return NotebookPlan(
        notebooks=notebooks,
        parameters={
            nb.name: notebook_parameters(nb, values, set_overrides or {}) for nb in notebooks
        },
        output_dir=output_dir,
        root=root,
        cwd=cwd,
    )


def run_notebooks(
    plan: NotebookPlan,
    *,
    timeout: int = DEFAULT_TIMEOUT,
    log_output: bool = False,
    keep_endpoint: bool = False,
    progress: Callable[[str], None] = lambda line: None,
    done: Callable[[Path], None] = lambda path: None,
) -> list[Path]:
    """Execute the planned notebooks in order; stop the local endpoints they leave running.

    Args:
        plan: From `plan_notebooks`.
        timeout: Seconds one cell may run.
        log_output: Also stream the cells' output (papermill's logger).
        keep_endpoint: Leave the local endpoints the notebooks started running.
        progress: Called with each human progress line.
        done: Called with each executed notebook's path as soon as it is written.

    Returns:
        The executed notebooks.

    Raises:
        NotebookRunError: When a notebook fails (the ones after it do not run).
    """
    from workflow.local.endpoints import running_endpoints, stop_new_endpoints

    check_kernel()
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    before = running_endpoints(plan.root)
    outputs: list[Path] = []
    try:
        for notebook in plan.notebooks:
            output = plan.output_dir / f"{notebook.path.stem}.ipynb"
            parameters = plan.parameters[notebook.name]
            progress(f"{notebook.name}: running ({len(parameters)} parameters)")
            seconds = execute(
                notebook, output, parameters, cwd=plan.cwd, timeout=timeout, log_output=log_output
            )
            progress(f"{notebook.name}: ok in {seconds:.0f} s -> {output}")
            outputs.append(output)
            done(output)
    finally:
        if not keep_endpoint:
            for name in stop_new_endpoints(plan.root, before):
                progress(f"stopped the local endpoint {name}")
    return outputs


__all__ = [
    "DEFAULT_TIMEOUT",
    "NotebookPlan",
    "check_kernel",
    "describe_failure",
    "execute",
    "notebooks_folder",
    "plan_notebooks",
    "run_notebooks",
]
