"""Managed-spot style resume after SIGKILL, SIGTERM handling, and a real 2-host gloo job."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _start(processes: Any, base: Path, log: Path, **extra: str) -> subprocess.Popen[str]:
    with log.open("w") as stream:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, str(processes.programs / "train")],
            env=processes.environ(SAGEMAKER_BASE_DIR=str(base), **extra),
            stdout=stream,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _wait_for_checkpoint(process: subprocess.Popen[str], folder: Path, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if list(folder.glob("checkpoint-*.pth")):
            return
        if process.poll() is not None:
            pytest.fail(
                f"train ended ({process.returncode}) before a checkpoint:\n{log.read_text()}"
            )
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no checkpoint within 300 s:\n{log.read_text()}")


def _steps(log: str) -> list[int]:
    return [int(s) for s in re.findall(r"epoch=\d+ step=(\d+) loss=", log)]


def test_sigkill_then_restart_resumes_and_finishes_the_planned_epochs(
    ml_tree: Callable[..., Path], tiny_hp: dict[str, str], processes: Any, tmp_path: Path
) -> None:
    hp = {**tiny_hp, "epochs": "2", "batch_size": "2", "checkpoint_steps": "1"}
    base = ml_tree(hp)  # 4 training images, batch 2: 2 steps per epoch, 4 in all
    first_log = tmp_path / "first.log"
    first = _start(processes, base, first_log)
    _wait_for_checkpoint(first, base / "checkpoints", first_log)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert not (base / "model" / "model.pth").exists()
    saved = sorted(
        int(p.stem.split("-")[1]) for p in (base / "checkpoints").glob("checkpoint-*.pth")
    )
    assert saved and saved[-1] < 4, "the first run was killed mid-training"

    second = processes.run_train(base)
    log = second.stderr
    assert second.returncode == 0, log[-3000:]
    match = re.search(r"resumed: checkpoint=checkpoint-(\d+)\.pth epoch=(\d+) step=(\d+)", log)
    assert match, log[-3000:]
    assert int(match.group(1)) == int(match.group(3)) == saved[-1]
    # the epoch the last saved step ran in (step 2 is the last step of epoch 1, not epoch 2)
    assert int(match.group(2)) == (saved[-1] - 1) // 2 + 1
    steps_after = _steps(log)
    assert steps_after == list(range(saved[-1] + 1, 5)), (
        "the restart continues, it does not start over"
    )
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["steps"]) == (2, 4)


def test_sigterm_saves_a_checkpoint_and_reports_the_stop(
    ml_tree: Callable[..., Path], tiny_hp: dict[str, str], processes: Any, tmp_path: Path
) -> None:
    base = ml_tree({**tiny_hp, "epochs": "3", "batch_size": "1", "checkpoint_steps": "1"})
    log_path = tmp_path / "train.log"
    process = _start(processes, base, log_path)
    _wait_for_checkpoint(process, base / "checkpoints", log_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    first = (base / "output" / "failure").read_text().splitlines()[0]
    assert first.startswith("training was stopped by SIGTERM at epoch 1 step")
    stopped_at = int(re.search(r"step (\d+)", first).group(1))  # type: ignore[union-attr]
    assert (base / "checkpoints" / f"checkpoint-{stopped_at:09d}.pth").exists()
    assert not (base / "model" / "model.pth").exists()


def test_two_hosts_train_with_gloo_on_loopback(
    ml_tree: Callable[..., Path], tiny_hp: dict[str, str], processes: Any, tmp_path: Path
) -> None:
    hp = {**tiny_hp, "batch_size": "1", "checkpoint_steps": "0"}
    hosts = ["algo-2", "algo-1"]  # unsorted on purpose: algo-1 is the master
    bases = {
        host: ml_tree(hp, name=host, resource={"current_host": host, "hosts": hosts})
        for host in sorted(hosts)
    }
    port = str(processes.free_port())
    logs = {host: tmp_path / f"{host}.log" for host in bases}
    running = {
        host: _start(processes, bases[host], logs[host], MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        for host in bases
    }
    try:
        codes = {host: p.wait(timeout=400) for host, p in running.items()}
    finally:
        for p in running.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    details = "\n".join(f"--- {h}\n{logs[h].read_text()[-2000:]}" for h in logs)
    assert codes == {"algo-1": 0, "algo-2": 0}, details
    master_log = logs["algo-1"].read_text()
    assert "distributed: backend=gloo rank=0 world_size=2 master=127.0.0.1" in master_log
    # 4 images over 2 ranks with batch 1: 2 steps, each averaging both ranks' losses.
    metrics = json.loads((bases["algo-1"] / "model" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["steps"]) == (1, 2)
    assert not (bases["algo-2"] / "model" / "model.pth").exists(), "only the master writes model/"
    assert (
        not list((bases["algo-2"] / "checkpoints").glob("*"))
        if (bases["algo-2"] / "checkpoints").exists()
        else True
    )


def test_several_processes_on_one_host_share_the_job(
    ml_tree: Callable[..., Path], tiny_hp: dict[str, str], processes: Any
) -> None:
    base = ml_tree({**tiny_hp, "batch_size": "1"})
    result = processes.run_train(
        base, MASK_R_CNN_PROCESSES_PER_HOST="2", MASTER_PORT=str(processes.free_port())
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processes_per_host=2" in result.stderr
    assert "distributed: backend=gloo rank=0 world_size=2 master=127.0.0.1" in result.stderr
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["steps"]) == (1, 2)  # 4 images over 2 processes


def test_a_data_error_in_a_spawned_process_reaches_the_failure_file(
    ml_tree: Callable[..., Path],
    synthetic_data: Path,
    tiny_hp: dict[str, str],
    processes: Any,
    tmp_path: Path,
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(synthetic_data / "train", broken)
    doc = json.loads((broken / "annotations.json").read_text())
    doc["annotations"][0]["category_id"] = 77
    (broken / "annotations.json").write_text(json.dumps(doc))
    base = ml_tree(tiny_hp, {"training": broken})
    result = processes.run_train(
        base, MASK_R_CNN_PROCESSES_PER_HOST="2", MASTER_PORT=str(processes.free_port())
    )
    assert result.returncode == 2, result.stderr[-3000:]
    first = (base / "output" / "failure").read_text().splitlines()[0]
    assert "category_id 77, which is not in 'categories'" in first
