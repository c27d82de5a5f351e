"""The helpers of the reliability suite (imported by its tests and its conftest): the tally,
process and memory probes, a live `serve`, the local runtime harness and its fast settings.

A module of its own (not `conftest`), so that tests import it by a name no other test folder
uses, whatever order pytest collects the folders in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# Shared with the other suites; re-exported because this suite imports them from here.
from helpers import TINY_ARCHITECTURE
from helpers import child_environ as child_environ
from helpers import free_port as free_port
from helpers.tiny_model import write_tiny_model as write_tiny_model

REPO = Path(__file__).resolve().parents[2]
# RELIABILITY_CONTAINER_DIR: fuzz another copy of container/ (e.g. a candidate fix)
PROGRAMS = Path(os.environ.get("RELIABILITY_CONTAINER_DIR") or REPO / "container") / "mask_r_cnn"

# The server under test: 2 workers, a 1 MB body limit and a 1 Mpx decoded-image limit, so that
# oversized bodies and bombs are cheap to send and an accepted image is cheap to run.
SERVE_WORKERS = 2
SERVE_MAX_PAYLOAD_MB = 1
SERVE_MAX_IMAGE_PIXELS = 1_000_000


def scale() -> float:
    """The case-count multiplier (`RELIABILITY_SCALE`, default 1)."""
    try:
        return max(float(os.environ.get("RELIABILITY_SCALE", "1")), 0.01)
    except ValueError:
        return 1.0


def examples(base: int) -> int:
    """`base` generated cases times the scale (at least 10)."""
    return max(int(base * scale()), 10)


# ---------------------------------------------------------------------------------------------
# the tally
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the reliability table."""

    area: str
    what: str
    tried: int = 0
    broke: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: str, broke: bool = False) -> None:
        """Count one case with its outcome (e.g. an HTTP status) and whether it broke."""
        self.tried += 1
        self.broke += int(broke)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Tally:
    """Counts of every reliability test of the session (thread-safe)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.lock = threading.Lock()

    def row(self, area: str, what: str) -> Row:
        """Return the row `(area, what)`, creating it."""
        with self.lock:
            return self.rows.setdefault((area, what), Row(area, what))

    def to_json(self) -> list[dict[str, Any]]:
        """Return the rows as JSON-ready dicts."""
        return [vars(row) for row in self.rows.values()]


# ---------------------------------------------------------------------------------------------
# processes and memory
# ---------------------------------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: the fields follow the last ')'
    return int(text.rsplit(")", 1)[1].split()[1])


def _children_by_parent() -> dict[int, list[int]]:
    """Every living process's children, by parent pid (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _ppid(int(entry.name))
            if parent is not None:
                parents.setdefault(parent, []).append(int(entry.name))
    return parents


def process_tree(root: int) -> list[int]:
    """Return `root` and all its living descendants (from /proc)."""
    parents = _children_by_parent()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int) -> float:
    """The summed resident memory of a process tree in MiB."""
    return sum(rss_kib(pid) for pid in process_tree(root)) / 1024


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---------------------------------------------------------------------------------------------
# a live server on a tiny model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    """A running `serve` process (gunicorn alone) on 127.0.0.1."""

    url: str
    process: subprocess.Popen[str]
    log_path: Path
    max_payload_bytes: int
    max_image_pixels: int

    def rss_mib(self) -> float:
        """Resident memory of serve + gunicorn master + workers, in MiB."""
        return tree_rss_mib(self.process.pid)

    def pids(self) -> list[int]:
        """serve and every process below it."""
        return process_tree(self.process.pid)

    def ping(self, timeout: float = 30) -> int:
        """The status of GET /ping."""
        return requests.get(f"{self.url}/ping", timeout=timeout).status_code


def stop_process(process: subprocess.Popen[Any], grace: float = 30) -> int:
    """SIGTERM a process and wait for it (SIGKILL after `grace` seconds)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# the local runtime running the rendered definition
# ---------------------------------------------------------------------------------------------

STAND_IN = Path(__file__).resolve().parent / "standin"
REAL_CONTAINER = REPO / "container"
FAST_HYPERPARAMETERS = {
    "epochs": "1",
    **TINY_ARCHITECTURE,
    "min_size": "64",
    "max_size": "64",
    "fast": "true",
    "batch_size": "2",
    "num_workers": "0",
    "trainable_backbone_layers": "0",
    "warmup_steps": "1",
    "detections_per_image": "5",
}
# The local settings of these runs: a data set of a few images and no gate threshold (the
# defaults train the demo model for minutes and gate it at 0.1; these runs test faults, not
# learning).
FAST_LOCAL = {
    "local.gate_threshold": 0,
    "local.dataset.train": 4,
    "local.dataset.validation": 2,
    "local.dataset.test": 2,
}


@dataclass
class Harness:
    """A `LocalRuntime` on a temporary root, with the tiny data set in its store."""

    runtime: Any
    config: Any
    data: dict[str, str]

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    def start(self, commit: str = "abc1234", **input_overrides: Any) -> Any:
        """Start the rendered definition with the local execution input."""
        from workflow.definition import render_json
        from workflow.local.pipeline import build_input

        document = build_input(self.config, commit, self.data)
        document.update(input_overrides)
        name = document["JobName"]
        return self.engine.start_execution(
            render_json(self.config), document, name=name, state_machine_name=self.config.name
        )

    def outbox(self) -> list[dict[str, Any]]:
        path = self.runtime.outbox.path
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def failure_notes(self) -> list[dict[str, Any]]:
        """The Message documents of the failure notifications."""
        return [
            json.loads(m["Message"]) for m in self.outbox() if "failed" in str(m.get("Subject"))
        ]

    def data_path(self, key: str) -> Path:
        """The file behind one of the data URIs plus a relative key."""
        return Path(self.runtime.store.path(key))


def entered(execution: Any) -> list[str]:
    """The names of the states an execution entered, in order (redrives included)."""
    return [
        str(e.get("stateEnteredEventDetails", {}).get("name"))
        for e in execution.history()
        if str(e.get("type", "")).endswith("StateEntered")
    ]


def process_tree_pruned(root: int, prune: set[int]) -> list[int]:
    """`root`'s descendants, not descending below the processes in `prune` (nor listing them)."""
    parents = _children_by_parent()
    found, todo = [], list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in prune:
            continue  # e.g. the session's live server: its worker restarts are not ours
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def new_descendants(before: set[int]) -> list[int]:
    """Living processes started below this one since `before` (a `process_tree` snapshot)."""
    me = os.getpid()
    return sorted(p for p in process_tree_pruned(me, before - {me}) if alive(p))
