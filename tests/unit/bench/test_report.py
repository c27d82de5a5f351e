from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import load_results, render, write_readme


def _doc(name: str, **extra: Any) -> dict[str, Any]:
    document = {
        "benchmark": name,
        "title": name,
        "created": "2026-11-21T20:00:00+00:00",
        "smoke": False,
        "machine": {"cpu_model": "Test CPU", "usable_cores": 2, "memory_gib": 8, "gpu": None},
        "versions": {"python": "3.11", "torch": "2", "commit": "a" * 40, "dirty": False},
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [2.0, 1.0, 1.0]},
        "error": None,
        "duration_s": 1.5,
        "figures": [
            {
                "figure": "per state",
                "target": "< 2 ms",
                "result": 1.234,
                "unit": "ms/state",
                "ratio": 0.617,
                "verdict": "met",
                "note": "a | b",
            }
        ],
        "details": {},
    }
    document.update(extra)
    return document


def test_render_has_one_row_per_figure_in_benchmark_order() -> None:
    page = render([_doc("startup"), _doc("local_loop")])
    rows = [line for line in page.splitlines() if "| per state |" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| local_loop", "| startup"]
    assert "| per state | < 2 ms | 1.23 ms/state | 0.617 | met | a \\| b |" in page
    assert "Test CPU, 2 usable cores" in page and "no GPU lent" in page


def test_render_lists_references_findings_and_errors() -> None:
    references = [{"what": "endpoint creation", "value": "8-25 min", "source": "https://x/1"}]
    page = render(
        [
            _doc("local_loop", details={"references": references, "findings": ["slow: x.py:f"]}),
            _doc("serving_overhead", error="the server did not start"),
        ]
    )
    assert "| endpoint creation | 8-25 min | https://x/1 |" in page
    assert "  - slow: x.py:f" in page
    assert "not measured: the server did not start" in page


def test_load_results_orders_and_skips_other_files(tmp_path: Path) -> None:
    for name in ("startup", "local_loop", "engine_overhead"):
        (tmp_path / f"{name}.json").write_text(json.dumps(_doc(name)))
    (tmp_path / "notes.json").write_text(json.dumps({"not": "a result"}))
    (tmp_path / "broken.json").write_text("{")
    names = [d["benchmark"] for d in load_results(tmp_path)]
    assert names == ["local_loop", "engine_overhead", "startup"]
    readme = write_readme(tmp_path)
    assert readme.read_text().startswith("# Benchmarks")


def test_render_without_results_says_how_to_run() -> None:
    assert "python -m bench" in render([])
