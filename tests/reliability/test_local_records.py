"""Local SageMaker records and store writes under concurrent readers and failing writes.

A record used to be created empty (`O_EXCL`) and then written, so a reader in between saw an
empty file (`JSONDecodeError`), and a write that failed half-way left a partial record that
blocked the name forever. Here a writer creates large records while readers list and parse the
folder continuously, and writes are made to fail part-way. "Broke" is a reader that saw an
empty or partial file, a partial file left behind, or a temporary file left behind.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from reliability_kit import Tally, examples

from workflow.local.report import save_json
from workflow.local.sagemaker import Records
from workflow.local.sns import Outbox
from workflow.local.store import LocalStore, write_json_atomic

pytestmark = [pytest.mark.integration]

AREA = "local records"
PAYLOAD = {f"key-{i}": "x" * 200 for i in range(1000)}  # ~230 KB: a wide write window


def test_readers_never_see_an_empty_or_partial_record(tmp_path: Path, tally: Tally) -> None:
    records = Records(LocalStore(tmp_path))
    count = examples(60)
    done = threading.Event()
    seen: list[str] = []

    def read() -> None:
        folder = records.base / "TrainingJob"
        while not done.is_set():
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                try:
                    json.loads(path.read_text())
                    seen.append("whole")
                except json.JSONDecodeError:
                    seen.append("partial")
                except FileNotFoundError:
                    pass

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for i in range(count):
            name = f"job-{i}"
            records.create("TrainingJob", name, {"TrainingJobName": name, **PAYLOAD}, "job")
            records.update("TrainingJob", name, TrainingJobStatus="Completed")
    finally:
        done.set()
        for reader in readers:
            reader.join()
    partial = seen.count("partial")
    row = tally.row(AREA, "records read while created/updated (2 readers)")
    row.tried += len(seen)
    row.broke += partial
    row.outcomes["whole"] = row.outcomes.get("whole", 0) + seen.count("whole")
    assert partial == 0, f"{partial} of {len(seen)} reads saw an empty or partial record"
    assert not list((records.base / "TrainingJob").glob(".tmp-*"))


class Unprintable:
    def __str__(self) -> str:
        raise OSError(28, "No space left on device")  # a write that fails part-way


@pytest.mark.parametrize("writer", ["Records.create", "Records.update", "save_json"])
def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, tally: Tally, writer: str) -> None:
    records = Records(LocalStore(tmp_path))
    bad = {"TrainingJobName": "job-1", **PAYLOAD, "zz": Unprintable()}
    path: Path
    with pytest.raises(OSError, match="No space left"):
        if writer == "Records.create":
            path = records.path("TrainingJob", "job-1")
            records.create("TrainingJob", "job-1", bad, "job")
        elif writer == "Records.update":
            records.create("TrainingJob", "job-1", {"TrainingJobName": "job-1"}, "job")
            path = records.path("TrainingJob", "job-1")
            write_json_atomic(path, bad)
        else:
            path = tmp_path / "runs" / "history.json"
            save_json(path, bad)
    left = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
    intact = writer == "Records.update" and json.loads(path.read_text())["TrainingJobName"]
    broke = any(n.startswith(".tmp-") for n in left) or (path.exists() and not intact)
    tally.row(AREA, "writes failing part-way (record, update, run file)").count(
        "nothing left" if not broke else "partial file", broke
    )
    assert not broke, left
    if writer == "Records.create":  # the name is still free
        records.create("TrainingJob", "job-1", {"TrainingJobName": "job-1"}, "job")


def test_outbox_reader_skips_a_message_still_being_written(tmp_path: Path, tally: Tally) -> None:
    outbox = Outbox(tmp_path)
    outbox.publish("arn:aws:sns:us-east-1:0:t", json.dumps(PAYLOAD), "whole")
    with outbox.path.open("a") as handle:  # what a reader sees in the middle of a write
        handle.write('{"Message": "half of a messa')
    try:
        messages = outbox.messages()
        outcome = f"{len(messages)} whole message"
    except json.JSONDecodeError:
        messages, outcome = [], "JSONDecodeError"
    broke = [m["Subject"] for m in messages] != ["whole"]
    tally.row(AREA, "outbox read during a write").count(outcome, broke)
    assert not broke, outcome
