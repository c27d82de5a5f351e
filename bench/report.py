"""The Markdown page of the results: `bench/results/README.md`, the table README shows.

`render(results)` turns the result documents (see `bench.common`) into one table (benchmark,
figure, target, result, ratio, verdict), the published cloud figures with their sources, what
was found where a target is missed, and the machine and load each benchmark ran with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ORDER = (
    "local_loop",
    "demo_learning",
    "train_throughput",
    "serving_overhead",
    "engine_overhead",
    "startup",
)
README = "README.md"
_VERDICT_MARK = {
    "met": "met",
    "missed": "**missed**",
    "info": "-",
    "not measured": "not measured",
    "failed": "**failed**",
}


def load_results(folder: Path) -> list[Mapping[str, Any]]:
    """Read every `<name>.json` result in `folder`, in the benchmarks' order.

    Files that are not result documents (no `benchmark` and `figures` keys) are skipped.
    """
    results: list[Mapping[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and "benchmark" in document and "figures" in document:
            results.append(document)
    return ordered(results)


def ordered(results: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the result documents in the benchmarks' order (unknown names last, by name)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(results, key=lambda d: (rank.get(d["benchmark"], len(ORDER)), d["benchmark"]))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    magnitude = abs(float(value))
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _result(figure: Mapping[str, Any]) -> str:
    if figure.get("result") is None:
        return "-"
    unit = figure.get("unit") or ""
    return f"{_number(figure['result'])} {unit}".strip()


def table(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the lines of the main table."""
    lines = [
        "| benchmark | figure | target | result | ratio | verdict | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for document in results:
        for figure in document.get("figures", []):
            lines.append(
                "| "
                + " | ".join(
                    _cell(part)
                    for part in (
                        document["benchmark"] + (" (smoke)" if document.get("smoke") else ""),
                        figure.get("figure", ""),
                        figure.get("target") or "-",
                        _result(figure),
                        _number(figure.get("ratio")),
                        _VERDICT_MARK.get(str(figure.get("verdict")), figure.get("verdict")),
                        figure.get("note", ""),
                    )
                )
                + " |"
            )
    return lines


def _references(results: Iterable[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for document in results:
        for ref in document.get("details", {}).get("references", []):
            if not lines:
                lines += [
                    "| published cloud figure | value | source |",
                    "| --- | --- | --- |",
                ]
            lines.append(
                f"| {_cell(ref['what'])} | {_cell(ref['value'])} | {_cell(ref['source'])} |"
            )
    return lines


def _findings(results: Iterable[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for document in results:
        findings = document.get("details", {}).get("findings", [])
        if document.get("error"):
            findings = [f"not measured: {document['error']}", *findings]
        if findings:
            lines.append(f"- **{document['benchmark']}**")
            lines += [f"  - {_cell(text)}" for text in findings]
    return lines


def _runs(results: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| benchmark | created | duration | load average before / after | commit |",
        "| --- | --- | --- | --- | --- |",
    ]
    for document in results:
        load = document.get("load_average", {})
        version = document.get("versions", {})
        commit = (version.get("commit") or "?")[:10] + (" (dirty)" if version.get("dirty") else "")
        lines.append(
            f"| {document['benchmark']} | {document.get('created', '?')} | "
            f"{_number(document.get('duration_s'))} s | "
            f"{load.get('before', '?')} / {load.get('after', '?')} | {commit} |"
        )
    return lines


def render(results: Sequence[Mapping[str, Any]]) -> str:
    """Return the whole Markdown page for these results."""
    results = ordered(results)
    if not results:
        return "# Benchmarks\n\nNo results yet: run `python -m bench` (or `make bench`).\n"
    first = results[0]
    machine = first.get("machine", {})
    version = first.get("versions", {})
    gpu = machine.get("gpu") or "none (no GPU lent: the AMP measurement is not measured)"
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (`make bench`); every figure is the median of several runs",
        "and every comparison a ratio of two measurements taken side by side in the same run.",
        "The machine is shared and noisy: see the load averages below. No benchmark is a test.",
        "",
        f"Machine: {machine.get('cpu_model', '?')}, {machine.get('usable_cores', '?')} usable "
        f"cores, {machine.get('memory_gib', '?')} GiB; GPU: {gpu}. Python "
        f"{version.get('python', '?')}, torch {version.get('torch', '?')}, torchvision "
        f"{version.get('torchvision', '?')}, moto {version.get('moto', '?')}.",
        "",
        "Ratio: the side-by-side comparison where the figure has a reference (container / "
        "baseline, served / raw forward, cloud / local), otherwise the result divided by the "
        "target's limit (below 1 is inside a `<` target).",
        "",
        *table(results),
    ]
    references = _references(results)
    if references:
        lines += ["", "## Published cloud figures, for scale", "", *references]
    findings = _findings(results)
    if findings:
        lines += ["", "## Where the time goes (profiles and causes)", "", *findings]
    lines += ["", "## Runs", "", *_runs(results), ""]
    return "\n".join(lines)


def write_readme(folder: Path) -> Path:
    """Render the results found in `folder` into `folder/README.md`; return its path."""
    path = folder / README
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(load_results(folder)), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["load_results", "render", "table", "write_readme"]
