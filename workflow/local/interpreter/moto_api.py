"""The moto pin, the light import of its ASL interpreter and every private name the seam uses.

`check_compat()` verifies the moto version (`MOTO_VERSION`) and that every private attribute in
`PRIVATE_SURFACE` still exists; `LocalEngine()` calls it, so a moto upgrade fails with one
sentence naming what moved instead of a wrong result.

`moto.batch.utils` (only used by moto's AWS Batch integration, which the engine never runs)
pulls in `moto.ec2` (~1 s, ~100 MB); it is stubbed in `sys.modules` while the interpreter is
imported, then removed.

Upgrading moto: change `MOTO_VERSION` and the pins, run `tests/unit/engine` and
`tests/integration/engine`, and fix or drop each patch whose target changed.
"""

# This module re-exports moto's untyped private names on purpose.
# mypy: disable-error-code="attr-defined,no-untyped-call,unused-ignore"

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Final

from workflow.local.errors import EngineCompatError

MOTO_VERSION: Final[str] = "5.2.5"
PIN_HINT: Final[str] = "pin it with: pip install 'moto[stepfunctions,server]==5.2.5'"


class _BatchJobStatus:
    """Stand-in for `moto.batch.utils.JobStatus` (only read by moto's Batch integration)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@contextlib.contextmanager
def _light_import() -> Iterator[None]:
    name = "moto.batch.utils"
    if name in sys.modules:
        yield
        return
    stub = types.ModuleType(name)
    stub.JobStatus = _BatchJobStatus  # type: ignore[attr-defined]
    sys.modules[name] = stub
    try:
        yield
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]


_P: Final = "moto.stepfunctions.parser"

with _light_import():
    try:
        import moto
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser import utils as moto_utils
        from moto.stepfunctions.parser.api import (
            ActivityFailedEventDetails,
            ActivityScheduledEventDetails,
            ActivityScheduleFailedEventDetails,
            ActivityStartedEventDetails,
            ActivitySucceededEventDetails,
            ActivityTimedOutEventDetails,
            ExecutionFailedEventDetails,
            ExecutionStartedEventDetails,
            HistoryEventExecutionDataDetails,
            HistoryEventType,
            StateMachineType,
            TaskFailedEventDetails,
            TaskSubmittedEventDetails,
            TaskTimedOutEventDetails,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name import (
            error_equals_decl,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
            CustomErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.error_name import (
            ErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
            StatesErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.intrinsic.argument import (
            argument as intrinsic_argument,
        )
        from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.generic import (
            string_format,
        )
        from moto.stepfunctions.parser.asl.component.state import state as state_module
        from moto.stepfunctions.parser.asl.component.state.choice import state_choice
        from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import (
            boolean_equals,
            numeric,
            string_operators,
            timestamp_operators,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
            iteration_worker,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
            branch_worker,
            branches_decl,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
            state_task_factory,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_callback,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
            ResourceCondition,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
            StateTaskService,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
            StateTaskServiceLambda,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_activitiy import (
            StateTaskActivity,
        )
        from moto.stepfunctions.parser.asl.component.state.fail import state_fail
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            wait_function,
        )
        from moto.stepfunctions.parser.asl.eval.callback.callback import (
            ActivityCallbackEndpoint,
            CallbackConsumerTimeout,
            CallbackNotifyConsumerError,
            CallbackOutcomeFailure,
            CallbackOutcomeFailureError,
            CallbackOutcomeSuccess,
            CallbackPoolManager,
            HeartbeatTimeoutError,
        )
        from moto.stepfunctions.parser.asl.eval.environment import Environment
        from moto.stepfunctions.parser.asl.eval.evaluation_details import (
            AWSExecutionDetails,
            EvaluationDetails,
            ExecutionDetails,
            StateMachineDetails,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
        from moto.stepfunctions.parser.asl.eval.program_state import (
            ProgramEnded,
            ProgramError,
            ProgramStopped,
            ProgramTimedOut,
        )
        from moto.stepfunctions.parser.asl.parse import preprocessor as asl_preprocessor
        from moto.stepfunctions.parser.asl.parse.asl_parser import (
            AmazonStateLanguageParser,
            ASLParserException,
        )
        from moto.stepfunctions.parser.asl.parse.intrinsic import (
            preprocessor as intrinsic_preprocessor,
        )
        from moto.stepfunctions.parser.asl.utils import json_path
        from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
        from moto.stepfunctions.parser.backend.execution_worker_comm import (
            ExecutionWorkerCommunication,
        )
    except ImportError as _exc:  # pragma: no cover - exercised only with another moto
        raise EngineCompatError(
            f"the local ASL engine cannot import moto's interpreter ({_exc}); it needs "
            f"moto=={MOTO_VERSION} exactly: {PIN_HINT}"
        ) from _exc

# (owner, attribute) pairs the seam reads or replaces; checked by check_compat().
PRIVATE_SURFACE: Final[tuple[tuple[object, str], ...]] = (
    (state_task_factory, "state_task_service_for"),
    (state_task_factory, "StateTaskActivity"),
    (StateTaskActivity, "_eval_execution"),
    (StateTaskActivity, "_eval_parameters"),
    (StateTaskActivity, "_from_error"),
    (CallbackPoolManager, "add_activity_task"),
    (ActivityCallbackEndpoint, "get_activity_task_start_endpoint"),
    (ActivityCallbackEndpoint, "notify_activity_task_start"),
    (lambda_eval_utils, "execute_lambda_function_integration"),
    (lambda_eval_utils, "LambdaFunctionErrorException"),
    (branches_decl, "CustomErrorName"),
    (branch_worker.BranchWorker, "_thread_routine"),
    (iteration_worker.IterationWorker, "_eval_job"),
    (iteration_worker, "CustomErrorName"),
    (state_fail, "CustomErrorName"),
    (state_task_service_callback, "CustomErrorName"),
    (error_equals_decl.ErrorEqualsDecl, "_eval_body"),
    (error_equals_decl.ErrorEqualsDecl, "_STATE_ALL_ERROR"),
    (state_choice.StateChoice, "_eval_state"),
    (retrier_decl.RetrierDecl, "_eval_body"),
    (wait_function.WaitFunction, "_wait_interval"),
    (json_path, "extract_json"),
    (state_module, "StateData"),
    (asl_preprocessor.Preprocessor, "visitString_intrinsic_function"),
    (intrinsic_preprocessor.Preprocessor, "visitFunc_arg_string"),
    (intrinsic_preprocessor.Preprocessor, "visitFunc_arg_float"),
    (string_format.StringFormat, "_eval_body"),
    (string_format.StringFormat, "_to_str_repr"),
    (asl_preprocessor, "IntrinsicParser"),
    (asl_preprocessor, "StringIntrinsicFunction"),
    (intrinsic_argument, "ArgumentLiteral"),
    (moto_utils, "TMP_THREADS"),
    (StateTaskServiceCallback, "_eval_service_task"),
    (StateTaskServiceCallback, "_build_sync_resolver"),
    (StateTaskServiceCallback, "_eval_sync"),
    (StateTaskServiceCallback, "_from_error"),
    (StateTaskServiceCallback, "_get_sfn_resource"),
    (StateTaskServiceCallback, "_get_sfn_resource_type"),
    (StateTaskServiceCallback, "_after_eval_execution"),
    (StateTaskServiceCallback, "_eval_integration_pattern"),
    (StateTaskServiceCallback, "_is_integration_pattern"),
    (StateTaskService, "_get_supported_parameters"),
    (StateTaskService, "_after_eval_execution"),
    (ExecutionWorker, "_execution_logic"),
    (ExecutionWorker, "_get_evaluation_environment"),
    (ExecutionWorker, "stop"),
    (Environment, "program_state"),
    (Environment, "is_running"),
    (Environment, "set_error"),
    (EventManager, "add_event"),
    (EventManager, "get_event_history"),
    (StatesErrorNameType, "StatesNoChoiceMatched"),
    (StatesErrorNameType, "StatesHeartbeatTimeout"),
    (StatesErrorNameType, "StatesRuntime"),
    (StatesErrorNameType, "StatesStatesDataLimitExceeded"),
    (AmazonStateLanguageParser, "parse"),
    (state_map.StateMap, "_eval_execution"),
    (StatesErrorNameType, "StatesExceedToleratedFailureThreshold"),
    (HistoryEventType, "MapRunStarted"),
)


def _instance_attributes() -> list[str]:
    problems = []
    if not hasattr(CallbackPoolManager(activity_store={}), "_pool"):
        problems.append("CallbackPoolManager._pool is missing")
    if not hasattr(EventManager(), "_history_event_list"):
        problems.append("EventManager._history_event_list is missing")
    return problems


def check_compat() -> None:
    """Verify that the installed moto provides the private interpreter API the engine uses.

    Raises:
        EngineCompatError: The moto version is not `MOTO_VERSION`, or a private name moved.
    """
    problems: list[str] = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}, the engine is tested with {MOTO_VERSION}")
    for owner, attribute in PRIVATE_SURFACE:
        if not hasattr(owner, attribute):
            owner_name = getattr(owner, "__name__", repr(owner))
            problems.append(f"{owner_name}.{attribute} is missing")
    problems += _instance_attributes()
    if problems:
        raise EngineCompatError(
            "the local ASL engine relies on private moto internals that changed ("
            + "; ".join(problems)
            + f"); {PIN_HINT}, and run tests/integration/engine before upgrading"
        )


def expect_target(condition: bool, target: str) -> None:
    """Refuse to patch `target` unless it is the moto code the patch was written against.

    Raises:
        EngineCompatError: `condition` is false.
    """
    if not condition:
        raise EngineCompatError(
            f"cannot patch moto's {target}: it is not the function moto {MOTO_VERSION} ships "
            f"(another patch or another moto version); {PIN_HINT}"
        )


def defined_in(function: object, module: types.ModuleType | str) -> bool:
    """Return True when `function` was defined in `module` (not replaced by a patch)."""
    name = module if isinstance(module, str) else module.__name__
    return getattr(function, "__module__", None) == name


__all__ = [
    "MOTO_VERSION",
    "PIN_HINT",
    "PRIVATE_SURFACE",
    "ASLParserException",
    "AWSExecutionDetails",
    "ActivityCallbackEndpoint",
    "ActivityFailedEventDetails",
    "ActivityScheduleFailedEventDetails",
    "ActivityScheduledEventDetails",
    "ActivityStartedEventDetails",
    "ActivitySucceededEventDetails",
    "ActivityTimedOutEventDetails",
    "AmazonStateLanguageParser",
    "CallbackConsumerTimeout",
    "CallbackNotifyConsumerError",
    "CallbackOutcomeFailure",
    "CallbackOutcomeFailureError",
    "CallbackOutcomeSuccess",
    "ClientError",
    "CustomErrorName",
    "Environment",
    "ErrorName",
    "EvaluationDetails",
    "EventDetails",
    "EventManager",
    "ExecutionDetails",
    "ExecutionFailedEventDetails",
    "ExecutionStartedEventDetails",
    "ExecutionWorker",
    "ExecutionWorkerCommunication",
    "FailureEvent",
    "FailureEventException",
    "HeartbeatTimeoutError",
    "HistoryEventExecutionDataDetails",
    "HistoryEventType",
    "ProgramEnded",
    "ProgramError",
    "ProgramStopped",
    "ProgramTimedOut",
    "ResourceCondition",
    "StateMachineDetails",
    "StateMachineType",
    "StateTaskActivity",
    "StateTaskService",
    "StateTaskServiceCallback",
    "StateTaskServiceLambda",
    "StatesErrorName",
    "StatesErrorNameType",
    "TaskFailedEventDetails",
    "TaskSubmittedEventDetails",
    "TaskTimedOutEventDetails",
    "asl_preprocessor",
    "boolean_equals",
    "branch_worker",
    "branches_decl",
    "check_compat",
    "defined_in",
    "error_equals_decl",
    "expect_target",
    "intrinsic_argument",
    "intrinsic_preprocessor",
    "iteration_worker",
    "json_path",
    "lambda_eval_utils",
    "moto",
    "moto_utils",
    "numeric",
    "retrier_decl",
    "state_choice",
    "state_fail",
    "state_map",
    "state_module",
    "state_task_factory",
    "state_task_service_callback",
    "string_format",
    "string_operators",
    "timestamp_operators",
    "to_json_str",
    "wait_function",
]
