"""Training faults with the real container (`container/mask_r_cnn/train`, CPU, tiny model).

- SIGKILL at several points of a job, each followed by a restart on the same tree: every restart
  resumes from the newest checkpoint and the last one finishes with every step accounted for.
- `MaxRuntimeInSeconds` (training.max_runtime_seconds) stops the job through the local runtime:
  the Train state fails with `MaxRuntimeExceeded`, the failure is notified, no process is left.
- Each kind of corrupt training data: the job's `output/failure` sentence is the cause of the
  failed Train state, of the execution's failure and of the failure notification in the outbox.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_ARCHITECTURE
from reliability_kit import (
    FAST_HYPERPARAMETERS,
    PROGRAMS,
    Harness,
    Tally,
    child_environ,
    entered,
    new_descendants,
    process_tree,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "training faults"
KILL_AFTER_STEPS = (1, 3, 5)  # SIGKILL once the checkpoint of this step exists (+ a random delay)
# The kills must land inside a step, so the steps have to outlast the random delay (0-0.4 s): the
# MobileNet FPN with torchvision's head sizes takes about 1 s a step on 2 cores, where the tiny
# network of the other tests takes 0.1 s.
SLOW_STEP_ARCHITECTURE = {
    **{key: value for key, value in FAST_HYPERPARAMETERS.items() if key not in TINY_ARCHITECTURE},
    "backbone": "mobilenet_v3_large_fpn",
}
EPOCHS = 4
TOTAL_STEPS = 8  # 4 epochs x 2 steps (4 images, batch 2): 3 steps remain after the last kill


def _tree(base: Path, data: Path) -> Path:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {
        **SLOW_STEP_ARCHITECTURE,
        "epochs": str(EPOCHS),
        "checkpoint_steps": "1",
        "keep_checkpoints": "2",
        "log_interval": "1",
        "augment": "false",
    }
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"training": {"TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    shutil.copytree(data / "train", base / "input" / "data" / "training")
    return base


def _checkpoint_steps(base: Path) -> list[int]:
    folder = base / "checkpoints"
    if not folder.is_dir():
        return []
    found = (re.fullmatch(r"checkpoint-(\d{9})\.pth", p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def test_sigkill_mid_epoch_then_restart_resumes(
    tmp_path: Path, tiny_data: Path, tally: Tally
) -> None:
    base = _tree(tmp_path / "ml", tiny_data)
    rng = random.Random(7)
    env = child_environ(SAGEMAKER_BASE_DIR=str(base), TRAINING_JOB_NAME="kill-resume")
    row = tally.row(AREA, "SIGKILL mid-epoch, then restart")
    logs: list[str] = []
    for attempt, kill_after in enumerate([*KILL_AFTER_STEPS, None]):
        log_path = tmp_path / f"attempt-{attempt}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, str(PROGRAMS / "train")],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            if kill_after is None:
                assert process.wait(timeout=600) == 0, log_path.read_text()[-3000:]
            else:
                earlier = set(_checkpoint_steps(base))  # an earlier attempt's do not count
                reached = wait_for(
                    lambda s=kill_after, p=process, old=earlier: (
                        p.poll() is not None
                        or any(step >= s and step not in old for step in _checkpoint_steps(base))
                    ),
                    timeout=600,
                    interval=0.05,
                )
                assert reached and process.poll() is None, (
                    f"the job ended before step {kill_after}:\n{log_path.read_text()[-3000:]}"
                )
                time.sleep(rng.uniform(0.0, 0.4))  # land somewhere inside the next step
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                assert process.returncode == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = log_path.read_text()
        logs.append(text)
        if attempt == 0:
            assert "resumed:" not in text
            continue
        resumed = re.search(
            r"resumed: checkpoint=checkpoint-(\d{9})\.pth epoch=\d+ step=(\d+)", text
        )
        expected_at_least = KILL_AFTER_STEPS[attempt - 1]
        ok = resumed is not None and int(resumed.group(2)) >= expected_at_least
        if ok and resumed is not None:
            first_step = re.search(r"epoch=\d+ step=(\d+) loss=", text[resumed.end() :])
            ok = first_step is None or int(first_step.group(1)) == int(resumed.group(2)) + 1
        row.count(
            f"resumed at step {resumed.group(2) if resumed else '?'}" if ok else "did not resume",
            not ok,
        )
        assert ok, (
            f"restart {attempt} did not resume after step {expected_at_least}:\n{text[-3000:]}"
        )

    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert metrics["steps"] == TOTAL_STEPS and metrics["epochs"] == EPOCHS, metrics
    assert (base / "model" / "model.pth").is_file()
    assert not (base / "output" / "failure").exists()
    # every step 1..TOTAL_STEPS was trained in some attempt
    seen = {int(s) for text in logs for s in re.findall(r"epoch=\d+ step=(\d+) loss=", text)}
    assert seen == set(range(1, TOTAL_STEPS + 1)), sorted(seen)


def test_max_runtime_stops_the_job_and_fails_the_state(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    before = set(process_tree(os.getpid()))
    harness = make_harness(
        container="real",
        **{"training.max_runtime_seconds": 3, "local.hyperparameters": {
            **FAST_HYPERPARAMETERS, "epochs": "200"}},
    )  # fmt: skip
    execution = harness.start()
    execution.wait(300)
    notes = harness.failure_notes()
    record = harness.runtime.sagemaker.records.get(
        "training-jobs", execution.input["TrainingJobName"]
    )
    left = [] if wait_for(lambda: not new_descendants(before), 30) else new_descendants(before)
    ok = (
        execution.status == "FAILED"
        and str(execution.cause).startswith("MaxRuntimeExceeded")
        and [n["State"] for n in notes] == ["Train"]
        and not left
    )
    tally.row(AREA, "MaxRuntimeInSeconds through the local runtime").count(
        "stopped, state failed, notified" if ok else str(execution.status), not ok
    )
    assert execution.status == "FAILED", execution.status
    assert execution.error == "Train.States.TaskFailed"
    assert str(execution.cause).startswith("MaxRuntimeExceeded"), execution.cause
    assert [n["State"] for n in notes] == ["Train"]
    assert notes[0]["Cause"].startswith("MaxRuntimeExceeded")
    assert record["TrainingJobStatus"] == "Stopped"
    assert "CreateModel" not in entered(execution)
    assert not left, f"training processes left after MaxRuntimeExceeded: {left}"


def _unknown_category(doc: dict[str, Any], root: Path) -> None:
    doc["annotations"][0]["category_id"] = 42


def _unknown_image(doc: dict[str, Any], root: Path) -> None:
    doc["annotations"][0]["image_id"] = 4242


def _malformed_polygon(doc: dict[str, Any], root: Path) -> None:
    polygon = next(a for a in doc["annotations"] if isinstance(a["segmentation"], list))
    polygon["segmentation"] = [[10, 10, 20]]


def _unreadable_image(doc: dict[str, Any], root: Path) -> None:
    (root / doc["images"][1]["file_name"]).write_bytes(b"\x89PNG but not really")


def _truncated_image(doc: dict[str, Any], root: Path) -> None:
    path = root / doc["images"][0]["file_name"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _missing_image(doc: dict[str, Any], root: Path) -> None:
    (root / doc["images"][0]["file_name"]).unlink()


def _no_images(doc: dict[str, Any], root: Path) -> None:
    doc["images"], doc["annotations"] = [], []


CORRUPTIONS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "unknown category": _unknown_category,
    "unknown image id": _unknown_image,
    "malformed polygon": _malformed_polygon,
    "unreadable image": _unreadable_image,
    "truncated image": _truncated_image,
    "missing image file": _missing_image,
    "no images": _no_images,
}


def test_each_kind_of_corrupt_data_fails_the_state_with_the_failure_sentence(
    make_harness: Callable[..., Harness], tiny_data: Path, tmp_path: Path, tally: Tally
) -> None:
    harness = make_harness(container="real")
    store = harness.runtime.store
    executions = {}
    for index, (kind, corrupt) in enumerate(CORRUPTIONS.items()):
        copy = tmp_path / f"corrupt-{index}"
        shutil.copytree(tiny_data / "train", copy)
        document = json.loads((copy / "annotations.json").read_text())
        corrupt(document, copy)
        (copy / "annotations.json").write_text(json.dumps(document))
        prefix = harness.config.s3.uri("data", f"corrupt-{index}", "train")
        store.put_tree(prefix, copy)
        # the executions run side by side: one engine, one store, one outbox
        executions[kind] = harness.start(commit=f"c0ffee{index}", TrainingData=prefix)
    notes = {}
    for kind, execution in executions.items():
        execution.wait(600)
        assert execution.done, f"{kind}: still running"
    for note in harness.failure_notes():
        notes[note["Execution"]] = note
    failures = []
    for kind, execution in executions.items():
        job = store.root / "jobs" / execution.input["TrainingJobName"] / "algo-1"
        failure_file = job / "output" / "failure"
        sentence = failure_file.read_text().splitlines()[0] if failure_file.is_file() else ""
        note = notes.get(execution.arn, {})
        problems = [
            what
            for what, bad in [
                ("not FAILED", execution.status != "FAILED"),
                ("wrong error", execution.error != "Train.States.TaskFailed"),
                ("no failure sentence", not sentence or "Traceback" in sentence),
                ("sentence not the cause", sentence not in str(execution.cause)),
                ("not notified", note.get("State") != "Train"),
                ("notification lacks the sentence", sentence not in str(note.get("Cause"))),
                ("went past Train", "CreateModel" in entered(execution)),
            ]
            if bad
        ]
        tally.row(AREA, "corrupt training data through the runtime").count(
            kind if not problems else f"{kind}: {problems}", bool(problems)
        )
        if problems:
            failures.append(
                f"{kind}: {problems} (sentence {sentence!r}, cause {execution.cause!r})"
            )
        else:
            tally.row(AREA, "corrupt training data through the runtime").notes.append(
                f"{kind}: {sentence[:160]}"
            )
    assert not failures, "\n".join(failures)
