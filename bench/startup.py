"""Start-up: wall time of `python -m workflow --help` and `python -m workflow render`.

Each command runs as a fresh subprocess from the repository root (so `workflow.yaml` is read),
with the `MLOPS_*` variables removed; the figure is the median of N runs after one warm-up run
(which fills the `.pyc` cache). The bare interpreter (`python -c pass`) is measured alongside as
the floor. One extra run of each command with `-X importtime` names the imports that cost the
most, so a missed target says where the time goes.

Target: `--help` under 1 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BenchSettings,
    Figure,
    Measurement,
    at_most,
    clean_env,
    median,
    python_argv,
    summary,
    time_command,
)

NAME = "startup"
TITLE = "Start-up of the CLI"
HELP_TARGET_S = 1.0
COMMANDS: dict[str, list[str]] = {
    "bare": ["-c", "pass"],
    "help": ["-m", "workflow", "--help"],
    "render": ["-m", "workflow", "render"],
}
_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def top_imports(stderr: str, count: int = 8) -> list[dict[str, Any]]:
    """Return the top-level imports with the largest cumulative time from `-X importtime` output.

    Args:
        stderr: the interpreter's stderr with `import time:` lines.
        count: how many to return.

    Returns:
        `[{"module", "cumulative_ms", "self_ms"}]`, largest first.
    """
    rows = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, module = match.groups()
        if len(indent) > 1:  # a nested import; its time is inside its parent's cumulative
            continue
        rows.append(
            {
                "module": module,
                "cumulative_ms": round(int(cumulative_us) / 1000, 1),
                "self_ms": round(int(self_us) / 1000, 1),
            }
        )
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return rows[:count]


def heavy_modules(stderr: str, names: Sequence[str]) -> dict[str, float]:
    """Return the cumulative import time (ms) of each of `names` that was imported at all."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and match.group(4) in names:
            found[match.group(4)] = round(int(match.group(2)) / 1000, 1)
    return found


def _measure(argv: list[str], repo_root: Path, runs: int, warm_up: bool = True) -> list[float]:
    env = clean_env()
    if warm_up:  # fills the .pyc cache, as every run after the first one on a machine has it
        time_command(python_argv(*argv), cwd=repo_root, env=env, timeout=300)
    return [
        time_command(python_argv(*argv), cwd=repo_root, env=env, timeout=300)[0]
        for _ in range(runs)
    ]


def run(settings: BenchSettings) -> Measurement:
    """Measure the start-up of the CLI (see the module docstring)."""
    runs = settings.count(default=7, smoke=1)
    times = {
        name: _measure(argv, settings.repo_root, runs, warm_up=not settings.smoke)
        for name, argv in COMMANDS.items()
    }
    profiles: dict[str, Any] = {}
    for name in ("help", "render"):
        _, result = time_command(
            python_argv("-X", "importtime", *COMMANDS[name]),
            cwd=settings.repo_root,
            env=clean_env(),
            timeout=300,
        )
        profiles[name] = {
            "top_imports": top_imports(result.stderr),
            "heavy_imports_ms": heavy_modules(
                result.stderr, ("torch", "sagemaker", "stepfunctions", "moto", "boto3", "yaml")
            ),
        }
    help_s = median(times["help"])
    render_s = median(times["render"])
    bare_s = median(times["bare"])
    findings = []
    help_heavy = profiles["help"]["heavy_imports_ms"]
    if at_most(help_s, HELP_TARGET_S) == "missed":
        top = ", ".join(
            f"{r['module']} {r['cumulative_ms']} ms" for r in profiles["help"]["top_imports"][:5]
        )
        findings.append(f"`--help` took {help_s:.2f} s; its largest imports: {top}.")
    heavy = [m for m in ("torch", "sagemaker", "stepfunctions", "moto") if m in help_heavy]
    if heavy:
        findings.append(
            f"`--help` imports {', '.join(heavy)}; keep them inside the command handlers."
        )
    render_heavy = ", ".join(
        f"{name} {ms:.0f} ms"
        for name, ms in sorted(
            profiles["render"]["heavy_imports_ms"].items(), key=lambda item: -item[1]
        )
    )
    findings.append(
        f"`render` ({render_s:.2f} s) imports (cumulative, `-X importtime`): {render_heavy}; "
        "the stepfunctions SDK imports sagemaker, which builds the training and model steps, "
        "so render cannot avoid it."
    )
    figures = [
        Figure(
            figure="`python -m workflow --help` wall time",
            target=f"< {HELP_TARGET_S:g} s",
            result=round(help_s, 3),
            unit="s",
            ratio=round(help_s / HELP_TARGET_S, 3),
            verdict=at_most(help_s, HELP_TARGET_S),
            note=f"median of {runs}; bare `python -c pass` {bare_s:.3f} s",
        ),
        Figure(
            figure="`python -m workflow render` wall time",
            target="",
            result=round(render_s, 3),
            unit="s",
            verdict="info",
            note=f"median of {runs}; imports stepfunctions + sagemaker to build the ASL",
        ),
    ]
    return Measurement(
        figures=figures,
        settings={"runs": runs, "commands": {k: " ".join(v) for k, v in COMMANDS.items()}},
        details={
            "seconds": {name: summary(values) for name, values in times.items()},
            "imports": profiles,
            "findings": findings,
        },
    )
