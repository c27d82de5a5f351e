"""A local job cannot change what other runs read: inputs are the job's own files.

Training code may rewrite a file of its input channel (normalising annotations in place, say).
On SageMaker that changes the copy on the instance, never the S3 object
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-access-training-data.html: File mode
downloads the channel to the instance). Locally the channel was hard-linked from the
content-addressed store, so such a job rewrote the shared data set and every later run trained
on the altered data. Here a container that rewrites its input runs twice; the store object and
the second run's input must stay the original bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_kit import FAST_HYPERPARAMETERS, FAST_LOCAL, REPO, STAND_IN, Tally

pytestmark = pytest.mark.integration

AREA = "local isolation"
REWRITE = """
# --- the attack: rewrite the input channel in place (as some training code does) ---
_seen = annotations.read_bytes()
(BASE / "seen-input.json").write_bytes(_seen)
with open(annotations, "r+b") as _handle:
    _handle.write(b'{"images": [{"id": 1, "file_name": "poisoned.png"}]}' + b" " * 64)
    _handle.truncate()
"""


def test_a_job_rewriting_its_input_leaves_the_store_unchanged(
    tmp_path: Path, tiny_data: Path, tally: Tally
) -> None:
    from workflow.config import load_config
    from workflow.definition import render_json
    from workflow.local.pipeline import build_input
    from workflow.local.runtime import LocalRuntime

    container = tmp_path / "container"
    shutil.copytree(STAND_IN, container)
    train = container / "mask_r_cnn" / "train"
    text = train.read_text()
    anchor = "seconds = float("
    train.write_text(text.replace(anchor, REWRITE + anchor, 1))
    settings = {"evaluation.enabled": False, "gate.enabled": False, "approval.enabled": False,
                "notification.enabled": False, **FAST_LOCAL,
                "local.hyperparameters": dict(FAST_HYPERPARAMETERS)}  # fmt: skip
    config = load_config(REPO / "workflow.yaml", environ={}, overrides=settings)
    runtime = LocalRuntime(config, tmp_path / "root", container_dir=container, log_sink=None,
                           time_scale=0.01, poll_interval=0.2, use_docker=False,
                           stop_grace_seconds=5, echo=False)  # fmt: skip
    with runtime:
        prefix = config.s3.uri("data", "isolation")
        runtime.store.put_tree(prefix, tiny_data)
        data = {"TrainingData": prefix + "train/", "ValidationData": prefix + "validation/",
                "TestData": prefix + "test/", "TestImages": prefix + "test/images/"}  # fmt: skip
        stored = Path(runtime.store.path(data["TrainingData"] + "annotations.json"))
        original = stored.read_bytes()
        seen = []
        for commit in ("aaaaaaa", "bbbbbbb"):
            document = build_input(config, commit, data)
            execution = runtime.engine.start_execution(
                render_json(config), document, name=document["JobName"],
                state_machine_name=config.name,
            )  # fmt: skip
            execution.wait(120)
            assert execution.done, "the run did not end"
            job = runtime.root / "jobs" / document["TrainingJobName"] / "algo-1"
            seen.append((job / "seen-input.json").read_bytes())
        changed = stored.read_bytes() != original or seen[1] != original
        tally.row(AREA, "a job rewrites its input channel in place, then a second run").count(
            "store changed" if changed else "store intact", changed
        )
        assert stored.read_bytes() == original, "the job rewrote the shared data set"
        assert seen == [original, original], "the second run trained on altered data"
