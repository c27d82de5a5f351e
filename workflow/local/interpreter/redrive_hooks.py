"""Redrive hooks: a redriven Map or Parallel runs only its iterations and branches that failed.

AWS: "For workflows that include an Inline Map or Parallel state, RedriveExecution API action
reschedules and redrives only the iterations and branches that failed or aborted"
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html).
The host (`ExecutionHost.redriven_iteration` / `redriven_branch`) knows, from the earlier
attempts' history, which of them succeeded and their outputs; those are not run again and
record no events. The others continue from the state they did not finish, with the input it
had (`resumed_iteration` / `resumed_branch`), as the execution itself does.

- `redrive-iterations` (`IterationWorker._eval_job`): an iteration of the redriven Map that
  succeeded before gives its recorded output;
- `redrive-branches` (`BranchWorker._thread_routine`): likewise for a Parallel branch, found by
  its `StartAt` state.
"""

# This module replaces attributes of moto's untyped private classes on purpose.
# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call"

from __future__ import annotations

import copy
import types
from typing import Any

from workflow.local.interpreter.host import host_for
from workflow.local.interpreter.moto_api import (
    Environment,
    branch_worker,
    defined_in,
    expect_target,
    iteration_worker,
)


class _Resumed:
    """A program that starts at another state with another input (a redriven iteration)."""

    def __init__(self, program: Any, state: str, state_input: Any) -> None:
        self._program = copy.copy(program)
        self._program.start_at = types.SimpleNamespace(start_at_name=state)
        self._input = state_input

    def eval(self, env: Environment) -> None:
        env.states.reset(input_value=self._input)
        self._program.eval(env)


def hook_redrive_iterations() -> None:
    """Give a redriven Map's iterations that succeeded before their recorded output."""
    cls = iteration_worker.IterationWorker
    original = cls._eval_job
    expect_target(defined_in(original, iteration_worker), "IterationWorker._eval_job")

    def _eval_job(self: Any, env: Environment, job: Any) -> None:
        host = host_for(env)
        if host is not None:
            kept, output = host.redriven_iteration(self._work_name, int(job.job_index))
            if kept:
                job.job_output = output
                return
            point = host.resumed_iteration(self._work_name, int(job.job_index))
            if point is not None:
                job.job_program = _Resumed(job.job_program, *point)
        original(self, env, job)

    cls._eval_job = _eval_job


def hook_redrive_branches() -> None:
    """Give a redriven Parallel's branches that succeeded before their recorded output."""
    cls = branch_worker.BranchWorker
    original = cls._thread_routine
    expect_target(defined_in(original, branch_worker), "BranchWorker._thread_routine")

    def _thread_routine(self: Any) -> None:
        host = host_for(self.env)
        if host is not None:
            start_at = str(self._program.start_at.start_at_name)
            kept, output = host.redriven_branch(start_at)
            if kept:
                self.env.states.reset(input_value=output)
                self.env.set_ended()
                self._branch_worker_comm.on_terminated(env=self.env)
                return
            point = host.resumed_branch(start_at)
            if point is not None:
                self._program = _Resumed(self._program, *point)
        original(self)

    cls._thread_routine = _thread_routine
