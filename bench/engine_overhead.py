"""Engine overhead: time per state of the local engine (`workflow.local.engine.LocalEngine`).

Two workloads, alternated run by run in one process, each after one warm-up run:

- a chain of 200 `Pass` states;
- a `Map` over 100 items whose iterator is one `Pass` state (time per item).

Per run: the wall time from `start_execution` to the end of `wait()` (parsing the definition
included), the parse time alone, and the engine's own span (first to last history timestamp,
millisecond resolution). The figures are the medians of the per-state wall times. Where the
target is missed, the same workload runs again under py-spy and the busiest functions are
named.

Target: under 2 ms per state.

`python -m bench.engine_overhead --workload chain --runs 5` runs one workload alone (what the
profile samples).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from bench.common import (
    BenchError,
    BenchSettings,
    Figure,
    Measurement,
    at_most,
    clean_env,
    median,
    python_argv,
    summary,
)
from bench.profiling import describe_profile, profile_command

NAME = "engine_overhead"
TITLE = "Local engine overhead"
TARGET_MS = 2.0
CHAIN_STATES = 200
MAP_ITEMS = 100


def chain_definition(states: int) -> dict[str, Any]:
    """Return an ASL document of `states` Pass states in a row."""
    body: dict[str, Any] = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(states)}
    body[f"S{states - 1}"] = {"Type": "Pass", "End": True}
    return {"Comment": f"{states} Pass states", "StartAt": "S0", "States": body}


def map_definition() -> dict[str, Any]:
    """Return an ASL document with one Map state whose iterator is one Pass state."""
    return {
        "Comment": "Map over $.items",
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "Iterator": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }


def workload(name: str, size: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Return (definition, input, number of states it counts as) of a workload."""
    if name == "chain":
        return chain_definition(size), {}, size
    if name == "map":
        return map_definition(), {"items": list(range(size))}, size
    raise ValueError(f"unknown workload {name!r}; use 'chain' or 'map'")


def run_once(
    engine: Any, definition: dict[str, Any], payload: dict[str, Any], *, history: bool = True
) -> dict[str, float]:
    """Run one execution to its end; return wall, parse and span times in ms.

    Without `history` the span is not read (the profile then shows the engine alone).

    Raises:
        BenchError: the execution did not succeed within 120 s.
    """
    started = time.perf_counter()
    engine.parse(definition)
    parse_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    execution = engine.start_execution(definition, payload)
    execution.wait(120)
    wall_ms = (time.perf_counter() - started) * 1000
    if execution.status != "SUCCEEDED":
        raise BenchError(
            f"the {definition.get('Comment')} execution ended {execution.status} "
            f"({execution.error}: {execution.cause}); the local engine is broken, run "
            "tests/unit/engine"
        )
    if not history:
        return {"wall_ms": wall_ms, "parse_ms": parse_ms, "span_ms": 0.0, "events": 0}
    events = execution.history()
    span_ms = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds() * 1000
    return {"wall_ms": wall_ms, "parse_ms": parse_ms, "span_ms": span_ms, "events": len(events)}


def measure(
    sizes: dict[str, int], runs: int, *, history: bool = True
) -> dict[str, list[dict[str, float]]]:
    """Run every workload `runs` times, alternating, after one warm-up each."""
    from workflow.local.engine import LocalEngine

    engine = LocalEngine()
    workloads = {name: workload(name, size) for name, size in sizes.items()}
    for definition, payload, _ in workloads.values():
        run_once(engine, definition, payload)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in workloads}
    for _ in range(runs):
        for name, (definition, payload, _) in workloads.items():
            results[name].append(run_once(engine, definition, payload, history=history))
    return results


def _profile(settings: BenchSettings, name: str, size: int) -> str:
    stacks = profile_command(
        python_argv(
            "-m", "bench.engine_overhead", "--workload", name, "--size", str(size), "--runs", "30"
        ),
        cwd=settings.repo_root,
        env=clean_env(),
    )
    return describe_profile(stacks)


def run(settings: BenchSettings) -> Measurement:
    """Measure the engine's per-state time (see the module docstring)."""
    runs = settings.count(default=7, smoke=1)
    sizes = (
        {"chain": 20, "map": 10} if settings.smoke else {"chain": CHAIN_STATES, "map": MAP_ITEMS}
    )
    results = measure(sizes, runs)
    figures = []
    details: dict[str, Any] = {"findings": []}
    labels = {
        "chain": (f"{sizes['chain']}-state Pass chain: time per state", "state"),
        "map": (f"{sizes['map']}-item Map: time per item", "item"),
    }
    for name, per_run in results.items():
        size = sizes[name]
        wall = [r["wall_ms"] / size for r in per_run]
        span = [r["span_ms"] / size for r in per_run]
        parse = [r["parse_ms"] for r in per_run]
        value = median(wall)
        verdict = at_most(value, TARGET_MS)
        label, unit = labels[name]
        figures.append(
            Figure(
                figure=label,
                target=f"< {TARGET_MS:g} ms",
                result=round(value, 3),
                unit=f"ms/{unit}",
                ratio=round(value / TARGET_MS, 3),
                verdict=verdict,
                note=(
                    f"wall incl. parse; engine span {median(span):.2f} ms/{unit}, parse "
                    f"{median(parse):.0f} ms; median of {runs}"
                ),
            )
        )
        details[name] = {
            "size": size,
            "wall_ms_per_unit": summary(wall),
            "span_ms_per_unit": summary(span),
            "parse_ms": summary(parse),
            "events": per_run[0]["events"],
        }
        if settings.profile and not settings.smoke:
            # Profiled even when the target is met: it shows what the next fix would be.
            details["findings"].append(
                f"{label} ({verdict}, {value:.2f} ms): " + _profile(settings, name, size)
            )
    return Measurement(
        figures=figures,
        settings={"runs": runs, "sizes": sizes, "warmup_runs": 1},
        details=details,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one workload alone (`--workload chain|map --size N --runs R`); for profiling."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine_overhead")
    parser.add_argument("--workload", choices=("chain", "map"), required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    size = args.size or (CHAIN_STATES if args.workload == "chain" else MAP_ITEMS)
    results = measure({args.workload: size}, args.runs, history=False)
    print(f"{args.workload}: {median([r['wall_ms'] for r in results[args.workload]]):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
