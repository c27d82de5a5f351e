"""The hooks that route moto's interpreter into the engine, and `apply_engine_patches()`.

`apply_engine_patches()` is the one function that applies every engine patch (once, under a
lock; `LocalEngine()` calls it after `check_compat()`). `ENGINE_PATCHES` lists them by name:

- hooks (no moto bug): `factory` (Task states of engine executions become `LocalServiceTask`
  / `LocalLambdaTask`; other moto users in the process are unaffected), `activity` (activity
  Task states become `LocalActivityTask`, whose fixes of moto's `StateTaskActivity` are listed
  in `workflow.local.interpreter.activity_task`), `lambda` (Lambda
  invocations call the engine's functions), `retry-sleep` and `wait-sleep` (Retry backoff and
  Wait states sleep through the engine: scaled, recorded, interruptible), `redrive-iterations`
  and `redrive-branches` (a redriven Map or Parallel runs only what failed, `redrive_hooks`);
- moto bug fixes, each in `fixes`, `data_fixes` or `distributed_map` with the moto code it
  corrects named;
- `jsonata` (JSONata expressions and workflow variables: the evaluator moto leaves unset, and
  the fixes listed in `workflow.local.interpreter.jsonata`).
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call,assignment"

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from workflow.local.interpreter import data_fixes, distributed_map, fixes, jsonata, redrive_hooks
from workflow.local.interpreter.activity_task import LocalActivityTask
from workflow.local.interpreter.host import (
    host_for,
    is_parsing_for_engine,
    silence_moto_logs,
    state_name,
)
from workflow.local.interpreter.lambda_invoke import invoke_local_lambda
from workflow.local.interpreter.moto_api import (
    Environment,
    StateTaskActivity,
    defined_in,
    expect_target,
    lambda_eval_utils,
    retrier_decl,
    state_task_factory,
    wait_function,
)
from workflow.local.interpreter.tasks import LocalLambdaTask, LocalServiceTask

Patch = tuple[str, Callable[[], None]]


def hook_factory() -> None:
    """Build our Task classes for definitions parsed by a `LocalEngine`."""
    original = state_task_factory.state_task_service_for
    expect_target(
        getattr(original, "__module__", "").endswith("state_task_service_factory"),
        "state_task_factory.state_task_service_for",
    )

    def state_task_service_for(service_name: str) -> Any:
        if is_parsing_for_engine():
            return LocalLambdaTask() if service_name == "lambda" else LocalServiceTask()
        return original(service_name=service_name)

    state_task_factory.state_task_service_for = state_task_service_for


def hook_activity() -> None:
    """Build `LocalActivityTask` for activity resources of definitions parsed by a `LocalEngine`."""
    original = state_task_factory.StateTaskActivity
    expect_target(original is StateTaskActivity, "state_task_factory.StateTaskActivity")

    def activity_task() -> Any:
        return LocalActivityTask() if is_parsing_for_engine() else original()

    state_task_factory.StateTaskActivity = activity_task


def hook_lambda() -> None:
    """Invoke the engine's Python functions for Lambda resources of engine executions."""
    original = lambda_eval_utils.execute_lambda_function_integration
    expect_target(
        defined_in(original, lambda_eval_utils),
        "lambda_eval_utils.execute_lambda_function_integration",
    )

    def execute_lambda_function_integration(
        env: Environment, parameters: dict[str, Any], region: str, state_credentials: Any
    ) -> None:
        host = host_for(env)
        if host is None:
            original(
                env=env, parameters=parameters, region=region, state_credentials=state_credentials
            )
            return
        invoke_local_lambda(host, env, parameters)

    lambda_eval_utils.execute_lambda_function_integration = execute_lambda_function_integration


def hook_retry_sleep() -> None:
    """Sleep Retry backoffs through the engine (moto's logic, the engine's clock)."""
    cls = retrier_decl.RetrierDecl
    original = cls._eval_body
    expect_target(defined_in(original, retrier_decl), "RetrierDecl._eval_body")
    outcome = retrier_decl.RetrierOutcome
    exhausted = retrier_decl.MaxAttemptsOutcome.EXHAUSTED

    def _eval_body(self: Any, env: Environment) -> None:
        host = host_for(env)
        if host is None:
            original(self, env)
            return
        self.error_equals.eval(env)
        if not env.stack.pop():
            env.stack.append(outcome.Skipped)
            return
        self.max_attempts.eval(env=env)
        if env.stack.pop() == exhausted:
            env.stack.append(outcome.Failed)
            return
        self.interval_seconds.eval(env=env)
        self.backoff_rate.eval(env=env)
        self.max_delay_seconds.eval(env=env)
        self.jitter_strategy.eval(env=env)
        interval_seconds: float = env.stack.pop()
        host.sleep(
            state_name(env),
            float(interval_seconds),
            "retry",
            env.is_running,
            env.program_state_event.wait,
        )
        env.stack.append(outcome.Executed)

    cls._eval_body = _eval_body


def hook_wait_sleep() -> None:
    """Sleep Wait states through the engine."""
    cls = wait_function.WaitFunction
    original = cls._wait_interval
    expect_target(defined_in(original, wait_function), "WaitFunction._wait_interval")

    def _wait_interval(self: Any, env: Environment, wait_seconds: int) -> None:
        host = host_for(env)
        if host is None:
            original(self, env, wait_seconds)
            return
        host.sleep(
            state_name(env),
            float(wait_seconds),
            "wait",
            env.is_running,
            env.program_state_event.wait,
        )

    cls._wait_interval = _wait_interval


ENGINE_PATCHES: Final[tuple[Patch, ...]] = (
    ("factory", hook_factory),
    ("activity", hook_activity),
    ("lambda", hook_lambda),
    ("retry-sleep", hook_retry_sleep),
    ("wait-sleep", hook_wait_sleep),
    ("redrive-iterations", redrive_hooks.hook_redrive_iterations),
    ("redrive-branches", redrive_hooks.hook_redrive_branches),
    ("nested-states-errors", fixes.fix_nested_states_errors),
    ("states-all", fixes.fix_states_all),
    ("choice-no-match", fixes.fix_choice_no_match),
    ("sticky-terminal-state", fixes.fix_sticky_terminal_state),
    ("definite-paths", data_fixes.fix_definite_paths),
    ("intrinsic-literals", data_fixes.fix_intrinsic_literals),
    ("context-state", data_fixes.fix_context_state),
    ("context-path-comparators", data_fixes.fix_context_path_comparators),
    ("distributed-map", distributed_map.fix_distributed_map),
    ("jsonata", jsonata.install),  # JSONata and variables: the evaluator moto leaves unset
)


class _Applied:
    """Which patches this process applied: moto's modules are process-wide, so is this record."""

    lock = threading.Lock()
    names: set[str] = set()  # noqa: RUF012 - the one record of process-wide patches


def apply_patches(patches: tuple[Patch, ...]) -> None:
    """Apply each patch not applied yet in this process, in order."""
    with _Applied.lock:
        for name, patch in patches:
            if name not in _Applied.names:
                patch()
                _Applied.names.add(name)


def apply_engine_patches() -> None:
    """Apply every interpreter patch the engine needs (once; later calls do nothing)."""
    apply_patches(ENGINE_PATCHES)
    silence_moto_logs()


def applied_patches() -> frozenset[str]:
    """Return the names of the patches applied so far in this process."""
    with _Applied.lock:
        return frozenset(_Applied.names)
