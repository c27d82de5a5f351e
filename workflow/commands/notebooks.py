"""``python -m workflow notebooks``: execute the notebooks with papermill, in local mode.

Each ``notebooks/NN_*.py`` (jupytext percent format) is converted in memory and executed in
order by papermill with the ``python3`` kernel of this environment; the executed ``.ipynb`` files
(with their PNG figures) go to ``--output`` (default ``notebooks/output/<UTC time>/``, never
overwritten). A failing cell stops the run with one line naming the notebook, the line of the
cell in the ``.py`` file and the error; the executed notebook shows the traceback.

Parameters: ``-p NAME VALUE`` (typed like papermill: ``True``/``False``/``None``, numbers, JSON
objects and lists, else a string) or ``-r NAME VALUE`` (always a string) go to every notebook
that declares ``NAME`` in its ``parameters`` cell; a name no notebook declares is an error.
``--set KEY=VALUE`` entries are merged into each notebook's ``overrides``. The command passes
``mode=local``, the store (``root``: ``local.root`` of the configuration) and ``--config`` unless
given. Local endpoints the notebooks leave running are stopped at the end (``--keep-endpoint``
keeps them; ``python -m workflow endpoints list`` shows them).

stdout: the path of each executed notebook. stderr: one progress line per notebook.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import ConfigError, WorkflowError

logger = logging.getLogger(__name__)

KERNEL_NAME = "python3"
NOTEBOOK_PATTERN = "[0-9][0-9]_*.py"
REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
DEFAULT_TIMEOUT = 1800


class NotebookRunError(WorkflowError):
    """A notebook failed (a cell raised, timed out, or the kernel died)."""


def register(subparsers: Any) -> None:
    """Add the ``notebooks`` command."""
    parser = subparsers.add_parser(
        "notebooks",
        help="execute the notebooks with papermill (local mode) into notebooks/output/",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="folder of the executed notebooks (default: notebooks/output/<UTC time>/)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help='a notebook parameter, typed (True, 3, 0.5, {"k": 1}, text); repeatable',
    )
    parser.add_argument(
        "-r",
        "--raw-parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter kept as a string; repeatable",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this notebook (file name or stem, e.g. 01_data); repeatable",
    )
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        help="folder of the .py notebooks (default: the repository's notebooks/)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds one cell may run (default {DEFAULT_TIMEOUT})",
    )
    parser.add_argument(
        "--log-output", action="store_true", help="also stream the cells' output to stderr"
    )
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help="leave the local endpoints the notebooks started running",
    )
    parser.set_defaults(handler=run)


# ---------------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# kernel and execution
# ---------------------------------------------------------------------------------------------


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


def _running_endpoints(root: Path) -> dict[str, int]:
    """Return ``{endpoint name: pid}`` of the local endpoints running in a store."""
    from workflow.local.sagemaker import LocalSageMaker
    from workflow.local.sagemaker_endpoints import endpoint_records
    from workflow.local.store import LocalStore

    def no_images(uri: str) -> Any:
        raise WorkflowError(f"image {uri} is not needed to list endpoints")

    sm = LocalSageMaker(store=LocalStore(root), resolve_image=no_images, log_sink=None)
    return {
        str(r["EndpointName"]): int(r["Pid"])
        for r in endpoint_records(sm)
        if r.get("Running") and isinstance(r.get("Pid"), int)
    }


def _stop_new_endpoints(root: Path, before: Mapping[str, int]) -> list[str]:
    """Stop the endpoints that run now but did not (with the same process) before."""
    from workflow.local.sagemaker import LocalSageMaker
    from workflow.local.sagemaker_endpoints import stop_endpoint
    from workflow.local.store import LocalStore

    def no_images(uri: str) -> Any:
        raise WorkflowError(f"image {uri} is not needed to stop endpoints")

    sm = LocalSageMaker(store=LocalStore(root), resolve_image=no_images, log_sink=None)
    stopped = []
    for name, pid in _running_endpoints(root).items():
        if before.get(name) != pid and stop_endpoint(sm, name):
            stopped.append(name)
    return stopped


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def _given_parameters(args: argparse.Namespace) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for name, value in args.parameter:
        given[name] = parse_value(value)
    for name, value in args.raw_parameter:
        given[name] = value
    return given


def run(args: argparse.Namespace) -> int:
    """Execute the notebooks."""
    from workflow.commands import config_from_args, parse_overrides

    config = config_from_args(args)
    cwd = Path.cwd()
    folder = Path(args.notebooks) if args.notebooks else REPO_NOTEBOOKS
    if not folder.is_dir() and not args.notebooks and (cwd / "notebooks").is_dir():
        folder = cwd / "notebooks"
    paths = find_notebooks(folder, args.only)
    notebooks = [read_notebook(path) for path in paths]
    given = _given_parameters(args)
    declared = {name for nb in notebooks for name in nb.parameters}
    unknown = sorted(set(given) - declared)
    if unknown:
        raise ConfigError(
            [
                f"-p {name} is not a parameter of {', '.join(p.name for p in paths)} (they "
                f"declare: {', '.join(sorted(declared))})"
                for name in unknown
            ],
            source="command line",
        )
    given.setdefault("mode", "local")
    root = Path(str(given.get("root") or config.local.root)).expanduser()
    root = root if root.is_absolute() else (cwd / root).resolve()
    given["root"] = str(root)
    if getattr(args, "config", None) and "config_file" not in given:
        given["config_file"] = str(Path(args.config).resolve())
    set_overrides = parse_overrides(getattr(args, "overrides", None))

    stamp = dt.datetime.now(tz=dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    output_dir = Path(args.output) if args.output else folder / "output" / stamp
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
    check_kernel()
    if args.log_output:
        # papermill logs the cells' output on its own logger; show it beside ours on stderr.
        papermill_logger = logging.getLogger("papermill")
        papermill_logger.handlers = [logging.StreamHandler(sys.stderr)]
        papermill_logger.setLevel(logging.INFO)
        papermill_logger.propagate = False
    output_dir.mkdir(parents=True, exist_ok=True)
    before = _running_endpoints(root)
    try:
        for notebook in notebooks:
            output = output_dir / f"{notebook.path.stem}.ipynb"
            parameters = notebook_parameters(notebook, given, set_overrides)
            print(f"{notebook.name}: running ({len(parameters)} parameters)", file=sys.stderr)
            seconds = execute(
                notebook,
                output,
                parameters,
                cwd=cwd,
                timeout=args.timeout,
                log_output=args.log_output,
            )
            print(f"{notebook.name}: ok in {seconds:.0f} s -> {output}", file=sys.stderr)
            sys.stdout.write(f"{output}\n")
            sys.stdout.flush()
    finally:
        if not args.keep_endpoint:
            for name in _stop_new_endpoints(root, before):
                print(f"stopped the local endpoint {name}", file=sys.stderr)
    return 0
