"""The serving benchmark's programs: the load client command, a smoke run, a process tree's CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import serving_overhead
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


def test_load_client_command_prints_json(echo_server: str, tmp_path: Path, repo_root: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(b"image")
    argv = [sys.executable, "-m", "bench.load_client", "--url", echo_server, "--image", str(image)]
    result = subprocess.run(
        [*argv, "--requests", "2"], cwd=repo_root, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["completed"] == 2
    missing = subprocess.run(
        [*argv[:-1], str(tmp_path / "nope.png")], cwd=repo_root, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "cannot read --image" in missing.stderr


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(serving_overhead.NAME, serving_overhead.TITLE, serving_overhead.run, settings)
    document = check_result_file(settings.out_dir / "serving_overhead.json", "serving_overhead")
    p50, absolute, p95, rps1, rps4 = document["figures"]
    assert p95["result"] >= p50["result"]
    assert absolute["target"] == "<= 60 ms" and absolute["result"] == p50["result"]
    assert p50["target"] == "ratio <= 1.10" and p50["ratio"] > 0
    assert rps1["unit"] == rps4["unit"] == "req/s" and rps4["result"] > 0
    assert document["settings"]["workers"] == 1 and document["settings"]["threads"] == 1
    p50_ms = document["details"]["p50_ms"]
    assert set(p50_ms) == {"raw", "http", "raw_back_to_back", "predict", "flask"}
    assert p50_ms["raw"]["n"] == p50_ms["http"]["n"] == 1  # one round of alternating pairs
    assert document["details"]["concurrency_4"]["completed"] == 4
    assert document["details"]["cpu_ms_per_request"]["http"]["n"] == 1
    assert document["settings"]["warm_up_requests"] == 1
    assert document["details"]["fastest_ratio"] > 0


def test_tree_cpu_seconds_counts_a_process_tree() -> None:
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", code + "time.sleep(30)"])
    try:
        own = None
        for _ in range(300):
            own = serving_overhead.tree_cpu_seconds(busy.pid)
            if own is not None and own >= 0.25:
                break
            time.sleep(0.1)
        assert own is not None and own >= 0.25
        assert serving_overhead.tree_cpu_seconds(os.getpid()) >= own  # the child is counted
    finally:
        busy.kill()
        busy.wait()
    assert serving_overhead.tree_cpu_seconds(2**22 + 7) is None
