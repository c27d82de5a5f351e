from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workflow.local import callbacks


def test_respond_only_when_a_local_request_exists(tmp_path: Path) -> None:
    assert callbacks.respond_if_pending(tmp_path, "tok", "approve") is False
    callbacks.register_request(tmp_path, "tok", "arn:exec", "Approve")
    assert callbacks.respond_if_pending(tmp_path, "tok", "approve") is True
    assert callbacks.read_response(tmp_path, "tok") == {
        "status": "success",
        "output": {"Approved": True},
    }


def test_file_names_follow_the_contract(tmp_path: Path) -> None:
    import hashlib

    path = callbacks.register_request(tmp_path, "abc", "arn:exec", "Approve")
    key = hashlib.sha256(b"abc").hexdigest()[:32]
    assert path == tmp_path / "callbacks" / f"{key}.request.json"
    data = json.loads(path.read_text())
    assert data["token"] == "abc" and data["execution"] == "arn:exec" and data["state"] == "Approve"
    assert "created" in data
    assert callbacks.pending_requests(tmp_path)[0]["token"] == "abc"


def test_reject_and_documents(tmp_path: Path) -> None:
    callbacks.register_request(tmp_path, "t", "e", "s")
    assert callbacks.respond_if_pending(tmp_path, "t", "reject", cause="bad masks")
    assert callbacks.read_response(tmp_path, "t") == {
        "status": "failure",
        "error": "Rejected",
        "cause": "bad masks",
    }
    document = {"status": "success", "output": {"x": 1}}
    assert callbacks.make_response(document) == document
    with pytest.raises(callbacks.CallbackError, match="'maybe'"):
        callbacks.make_response("maybe")
    with pytest.raises(callbacks.CallbackError, match="status"):
        callbacks.make_response({"status": "what"})


def test_watcher_delivers_and_cleans_up(tmp_path: Path) -> None:
    got: list[tuple[str, dict]] = []
    done = threading.Event()

    def deliver(token: str, response: dict) -> None:
        got.append((token, response))
        done.set()

    watcher = callbacks.CallbackWatcher(tmp_path, deliver, interval=0.02)
    watcher.watch("tok-1", "arn:exec", "Approve")
    assert callbacks.respond_if_pending(tmp_path, "tok-1", "reject")
    assert done.wait(5)
    watcher.close()
    assert got[0][0] == "tok-1" and got[0][1]["error"] == "Rejected"
    assert not list((tmp_path / "callbacks").iterdir())
