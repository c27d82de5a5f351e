"""workflow.local.orphans: telling a live runtime or job process from a dead or reused pid."""

from __future__ import annotations

import os

from workflow.local.orphans import is_same_process, started_at


def test_the_same_process_is_recognised_despite_a_boot_time_step_of_a_second() -> None:
    started = started_at(os.getpid())
    assert started is not None
    assert is_same_process(os.getpid(), started)
    assert is_same_process(os.getpid(), started + 1.0)  # btime is whole seconds and may step
    assert not is_same_process(os.getpid(), started - 60)  # a pid reused by a later process


def test_a_dead_or_unnamed_process_is_not_the_same() -> None:
    beyond_pid_max = 2**22 + 1  # Linux pids stop at 2**22
    assert started_at(beyond_pid_max) is None
    assert not is_same_process(beyond_pid_max, started_at(os.getpid()))
    assert not is_same_process("123", 1.0)
    assert not is_same_process(os.getpid(), None)
