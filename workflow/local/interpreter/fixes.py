"""Guarded fixes to moto 5.2.5's error handling, each naming the moto code it corrects.

- `nested-states-errors` (`CustomErrorName` as bound in `branches_decl`, `iteration_worker`,
  `state_fail` and `state_task_service_callback`): `States.*` errors raised inside a Map
  iteration or a Parallel branch became `States.Runtime`; a Fail state whose `Error` is a
  `States.*` name (re-raising a caught `States.TaskFailed`) and `SendTaskFailure` with such a
  name did too. They keep their name, as on AWS.
- `states-all` (`ErrorEqualsDecl._eval_body`): `States.ALL` caught `States.Runtime` and
  `States.DataLimitExceeded`, which AWS documents it "cannot catch"; a missed heartbeat
  (`tasks.py`) matches both `States.Timeout` and `States.HeartbeatTimeout`.
- `choice-no-match` (`StateChoice._eval_state`): a Choice with no match and no Default failed
  with `States.Runtime` instead of `States.NoChoiceMatched`.
- `sticky-terminal-state` (`Environment.set_error`): an error raised while a stopped or
  timed-out execution winds down turned ABORTED or TIMED_OUT into FAILED.
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call,typeddict-item"

from __future__ import annotations

from typing import Any

from workflow.local.interpreter.host import error_name_for, host_for
from workflow.local.interpreter.moto_api import (
    CustomErrorName,
    Environment,
    EventDetails,
    ExecutionFailedEventDetails,
    FailureEvent,
    FailureEventException,
    HistoryEventType,
    ProgramStopped,
    ProgramTimedOut,
    StatesErrorName,
    StatesErrorNameType,
    branches_decl,
    defined_in,
    error_equals_decl,
    expect_target,
    iteration_worker,
    state_choice,
    state_fail,
    state_task_service_callback,
)


def fix_nested_states_errors() -> None:
    """Keep `States.*` error names catchable across Map, Parallel, Fail and task tokens."""
    modules = (branches_decl, iteration_worker, state_fail, state_task_service_callback)
    for module in modules:
        expect_target(
            module.CustomErrorName is CustomErrorName, f"{module.__name__}.CustomErrorName"
        )
    for module in modules:
        module.CustomErrorName = error_name_for


def fix_states_all() -> None:
    """Make `States.ALL` skip `States.Runtime` and `States.DataLimitExceeded`, as on AWS."""
    cls = error_equals_decl.ErrorEqualsDecl
    original = cls._eval_body
    expect_target(defined_in(original, error_equals_decl), "ErrorEqualsDecl._eval_body")
    heartbeat = StatesErrorName(typ=StatesErrorNameType.StatesHeartbeatTimeout)
    timeout = StatesErrorName(typ=StatesErrorNameType.StatesTimeout)
    terminal = {
        StatesErrorNameType.StatesRuntime,
        StatesErrorNameType.StatesStatesDataLimitExceeded,
    }

    def _eval_body(self: Any, env: Environment) -> None:
        # AWS: States.ALL "cannot catch the States.DataLimitExceeded terminal error or Runtime
        # error types"; an explicit ErrorEquals ["States.Runtime"] still matches.
        error_name = env.stack[-1]
        if isinstance(error_name, StatesErrorName) and error_name.typ == heartbeat.typ:
            env.stack.pop()
            env.stack.append(
                any(name in self.error_names for name in (heartbeat, timeout, cls._STATE_ALL_ERROR))
            )
            return
        if (
            isinstance(error_name, StatesErrorName)
            and error_name.typ in terminal
            and cls._STATE_ALL_ERROR in self.error_names
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    cls._eval_body = _eval_body


def fix_choice_no_match() -> None:
    """Fail a Choice with no match and no Default with `States.NoChoiceMatched`."""
    cls = state_choice.StateChoice
    original = cls._eval_state
    expect_target(defined_in(original, state_choice), "StateChoice._eval_state")

    def _eval_state(self: Any, env: Environment) -> None:
        try:
            original(self, env)
        except RuntimeError as exc:
            if not (exc.args and str(exc.args[0]).startswith("No branching option")):
                raise
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesNoChoiceMatched),
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(
                        executionFailedEventDetails=ExecutionFailedEventDetails(
                            error="States.NoChoiceMatched",
                            cause=f"No Choice Rule matched and no Default in state '{self.name}'.",
                        )
                    ),
                )
            ) from exc

    cls._eval_state = _eval_state


def fix_sticky_terminal_state() -> None:
    """Keep ABORTED and TIMED_OUT when errors surface while an execution winds down."""
    original = Environment.set_error
    expect_target(defined_in(original, Environment.__module__), "Environment.set_error")

    def set_error(self: Any, error: Any) -> None:
        # e.g. a result selector applied to the None an interrupted wait returns.
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)) and (
            host_for(self) is not None
        ):
            return
        original(self, error)

    Environment.set_error = set_error
