"""What every benchmark shares: settings, figures, statistics, the machine and the result file.

A benchmark module exposes `NAME`, `TITLE` and `run(settings) -> Measurement`; `execute` wraps
it with the machine description, the versions, the load average before and after, and writes
`<out_dir>/<NAME>.json`:

```json
{"benchmark": "engine_overhead", "title": "...", "created": "2026-11-21T20:00:00+00:00",
 "smoke": false, "duration_s": 12.3, "error": null,
 "machine": {"cpu_model": "...", "cores": 2, "usable_cores": 2, "memory_gib": 23.4,
             "gpu": null, "platform": "Linux-..."},
 "load_average": {"before": [1.2, 0.8, 0.5], "after": [1.9, 1.0, 0.6]},
 "versions": {"python": "3.11.7", "torch": "2.14.1", "torchvision": "0.29.1", "moto": "5.2.5",
              "commit": "abc1234...", "dirty": true},
 "settings": {...}, "figures": [{"figure", "target", "result", "unit", "ratio", "verdict",
 "note"}], "details": {...}}
```

The file holds the latest run of that benchmark and replaces the previous one (git keeps the
history of the committed results); nothing else is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
VERSION_PACKAGES = (
    "torch",
    "torchvision",
    "moto",
    "stepfunctions",
    "sagemaker",
    "flask",
    "gunicorn",
)
# Variables that would change what the workflow CLI or the container does; the benchmarks
# measure the defaults, so subprocesses never inherit them.
_DROPPED_ENV_PREFIXES = ("MLOPS_", "SM_", "SAGEMAKER_", "MODEL_SERVER_", "MASK_R_CNN_")

Verdict = Literal["met", "missed", "info", "not measured", "failed"]


class BenchError(Exception):
    """A benchmark could not measure (a command failed, a server did not start, ...)."""


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """How to run the benchmarks.

    Attributes:
        smoke: tiny counts and sizes; checks that a benchmark runs end to end and writes its
            JSON, its figures mean nothing.
        repeats: runs per figure (median of them); None keeps each benchmark's default.
        threads: torch threads for training, serving and the raw forward.
        out_dir: where `<name>.json` and `README.md` go.
        repo_root: the checkout to benchmark.
        profile: profile with py-spy where a target is missed (adds time).
    """

    smoke: bool = False
    repeats: int | None = None
    threads: int = field(default_factory=usable_cores)
    out_dir: Path = RESULTS_DIR
    repo_root: Path = REPO_ROOT
    profile: bool = True

    def count(self, default: int, smoke: int = 1) -> int:
        """Return the number of runs: `repeats` if set, else `smoke` or `default`."""
        if self.repeats is not None:
            return self.repeats
        return smoke if self.smoke else default


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One row of the results table.

    Attributes:
        figure: what was measured, e.g. "`--help` wall time".
        target: the target as text, e.g. "< 1 s"; "" when there is none.
        result: the measured value (None when not measured).
        unit: the unit of `result`.
        ratio: the side-by-side ratio where there is a reference, else result / target limit.
        verdict: met, missed, info (no target), not measured, failed.
        note: one short sentence (what the ratio compares, why not measured, ...).
    """

    figure: str
    target: str
    result: float | None
    unit: str
    ratio: float | None = None
    verdict: Verdict = "info"
    note: str = ""


@dataclass
class Measurement:
    """What a benchmark's `run` returns: its figures, its settings and the raw details."""

    figures: list[Figure]
    settings: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) with linear interpolation (numpy's default).

    Raises:
        ValueError: `values` is empty or q is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values; measure at least once")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q = {q!r} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """Return the median of `values`."""
    return percentile(values, 50)


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Return median, min, max, p95 and every value (rounded) of a series."""
    return {
        "median": round(median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "p95": round(percentile(values, 95), digits),
        "n": len(values),
        "values": [round(v, digits) for v in values],
    }


def at_most(value: float, limit: float) -> Verdict:
    """Return `met` when value <= limit, else `missed`."""
    return "met" if value <= limit else "missed"


def at_least(value: float, limit: float) -> Verdict:
    """Return `met` when value >= limit, else `missed`."""
    return "met" if value >= limit else "missed"


# ---------------------------------------------------------------------------------------------
# the machine, the versions, subprocesses
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpu_name() -> str | None:
    """Return the first CUDA device's name, or None when torch sees no GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def machine_info() -> dict[str, Any]:
    """Describe this machine: CPU model, cores, memory, GPU, platform."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": _memory_gib(),
        "gpu": gpu_name(),
        "platform": platform.platform(),
    }


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def _git(repo_root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=repo_root, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def versions(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    """Return the Python and package versions and the commit (without importing the packages)."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["commit"] = _git(repo_root, "rev-parse", "HEAD")
    status = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    out["dirty"] = None if status is None else bool(status)
    return out


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this environment without the variables that change the defaults, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(extra or {})
    return env


def time_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command to its end and return its wall time in seconds and its result.

    Raises:
        BenchError: it exited non-zero or ran past `timeout`.
    """
    started = time.perf_counter()
    try:
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"{' '.join(argv[:4])} ran past {timeout:.0f} s; raise the timeout or look at why "
            "it hangs"
        ) from exc
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BenchError(
            f"{' '.join(argv[:5])} exited with code {result.returncode} ({' | '.join(tail)}); "
            "run it by hand to see why"
        )
    return elapsed, result


def python_argv(*args: str) -> list[str]:
    """Return the argv that runs this interpreter with `args`."""
    return [sys.executable, *args]


# ---------------------------------------------------------------------------------------------
# running one benchmark
# ---------------------------------------------------------------------------------------------


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    """Write `document` to `path` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def execute(
    name: str, title: str, run: Callable[[BenchSettings], Measurement], settings: BenchSettings
) -> dict[str, Any]:
    """Run one benchmark and write its result JSON; a BenchError becomes a `failed` result.

    Returns:
        The result document (also written to `<out_dir>/<name>.json`).
    """
    document: dict[str, Any] = {
        "benchmark": name,
        "title": title,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "smoke": settings.smoke,
        "machine": machine_info(),
        "versions": versions(settings.repo_root),
        "load_average": {"before": load_average()},
    }
    started = time.perf_counter()
    try:
        measurement = run(settings)
    except BenchError as exc:
        document.update(
            error=str(exc),
            settings={"threads": settings.threads, "smoke": settings.smoke},
            figures=[
                asdict(
                    Figure(
                        figure=title,
                        target="",
                        result=None,
                        unit="",
                        verdict="failed",
                        note=str(exc),
                    )
                )
            ],
            details={},
        )
    else:
        document.update(
            error=None,
            settings=measurement.settings,
            figures=[asdict(f) for f in measurement.figures],
            details=measurement.details,
        )
    document["duration_s"] = round(time.perf_counter() - started, 2)
    document["load_average"]["after"] = load_average()
    write_json(settings.out_dir / f"{name}.json", document)
    return document
