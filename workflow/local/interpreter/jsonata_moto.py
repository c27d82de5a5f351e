"""The moto 5.2.5 names the JSONata and variables patches use, and their shared helpers.

Everything here reads or builds private objects of `moto.stepfunctions.parser` (moto's port of
LocalStack's ASL interpreter). `MotoNames.load()` imports them when the patches are installed
(never at import of this module) and fails with `JSONataCompatError` when moto moved them.
"""

# mypy: disable-error-code="attr-defined,no-untyped-call,no-any-return"

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from workflow.errors import WorkflowError

__all__ = [
    "MARK",
    "PIN_HINT",
    "JSONataCompatError",
    "MotoNames",
    "patch_target",
    "record_entry_values",
    "replace",
    "variables_of",
]

MARK: Final[str] = "_workflow_jsonata_patch"
ENTRY_VALUES: Final[str] = "_workflow_entry_values"
MOTO_VERSION: Final[str] = "5.2.5"
PIN_HINT: Final[str] = "pin it with: pip install 'moto[stepfunctions,server]==5.2.5'"


class JSONataCompatError(WorkflowError):
    """The installed moto does not have the interpreter code the JSONata patches complete."""

    exit_code = 2


@dataclass(frozen=True)
class MotoNames:
    """The moto modules and classes the patches use."""

    api: Any
    failure_event: Any
    states_error_name: Any
    error_type: Any
    query_language_mode: Any
    event_details: Any
    string_expression: Any
    state: Any
    comparison: Any
    choice_rule: Any
    state_choice: Any
    assign_decl: Any
    distributed_worker: Any
    variable_store: Any
    preprocessor: Any
    antlr4utils: Any

    @classmethod
    def load(cls) -> MotoNames:
        """Import the moto names (moto is already loaded by the engine, so this is cheap).

        Raises:
            JSONataCompatError: A module moved, or a private field the patches read is gone.
        """
        try:
            import moto
            from moto.stepfunctions.parser import api
            from moto.stepfunctions.parser.asl.antlt4utils import antlr4utils
            from moto.stepfunctions.parser.asl.component.common.assign import assign_decl
            from moto.stepfunctions.parser.asl.component.common.error_name import (
                failure_event,
                states_error_name,
                states_error_name_type,
            )
            from moto.stepfunctions.parser.asl.component.common.query_language import (
                QueryLanguageMode,
            )
            from moto.stepfunctions.parser.asl.component.common.string import string_expression
            from moto.stepfunctions.parser.asl.component.state import state
            from moto.stepfunctions.parser.asl.component.state.choice import (
                choice_rule,
                state_choice,
            )
            from moto.stepfunctions.parser.asl.component.state.choice.comparison import (
                comparison,
            )
            from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
                distributed_item_processor_worker,
            )
            from moto.stepfunctions.parser.asl.eval import states, variable_store
            from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
            from moto.stepfunctions.parser.asl.parse import preprocessor
        except ImportError as exc:
            raise JSONataCompatError(
                f"the local JSONata support cannot import moto's interpreter ({exc}); {PIN_HINT}"
            ) from exc
        if moto.__version__ != MOTO_VERSION:
            raise JSONataCompatError(
                f"the local JSONata support completes moto {MOTO_VERSION}'s interpreter, "
                f"but moto {moto.__version__} is installed; {PIN_HINT}"
            )
        if "_states_data" not in getattr(states.States, "__annotations__", {}):
            raise JSONataCompatError(
                f"moto's States no longer holds $states in _states_data; {PIN_HINT}"
            )
        names = cls(
            api=api,
            failure_event=failure_event,
            states_error_name=states_error_name.StatesErrorName,
            error_type=states_error_name_type.StatesErrorNameType,
            query_language_mode=QueryLanguageMode,
            event_details=EventDetails,
            string_expression=string_expression,
            state=state,
            comparison=comparison,
            choice_rule=choice_rule,
            state_choice=state_choice,
            assign_decl=assign_decl,
            distributed_worker=distributed_item_processor_worker,
            variable_store=variable_store,
            preprocessor=preprocessor,
            antlr4utils=antlr4utils,
        )
        names.check_fields()
        return names

    def check_fields(self) -> None:
        """Fail when a private field or name the patches read is gone."""
        store = self.variable_store.VariableStore()
        missing = [
            f"VariableStore.{n}"
            for n in ("_outer_scope", "_inner_scope", "_declaration_tracing")
            if not hasattr(store, n)
        ]
        wanted = (
            (self.variable_store, "IllegalOuterScopeWrite"),
            (self.antlr4utils, "from_string_literal"),
            (self.error_type, "StatesQueryEvaluationError"),
            (self.error_type, "StatesRuntime"),
            (self.api.HistoryEventType, "EvaluationFailed"),
            (self.string_expression.Environment, "next_field_name"),
        )
        missing += [f"{getattr(o, '__name__', o)}.{a}" for o, a in wanted if not hasattr(o, a)]
        if missing:
            raise JSONataCompatError(
                "the local JSONata support relies on moto names that are gone ("
                + ", ".join(missing)
                + f"); {PIN_HINT}"
            )

    def query_evaluation_error(self, env: Any, cause: str) -> Exception:
        """Record an `EvaluationFailed` event; return the `States.QueryEvaluationError` to raise."""
        typ = self.error_type.StatesQueryEvaluationError
        failure = self.failure_event.FailureEventException(
            failure_event=self.failure_event.FailureEvent(
                env=env,
                error_name=self.states_error_name(typ=typ),
                event_type=self.api.HistoryEventType.EvaluationFailed,
                event_details=self.event_details(
                    evaluationFailedEventDetails=self.api.EvaluationFailedEventDetails(
                        error=typ.to_name(), cause=cause
                    )
                ),
            )
        )
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=self.api.HistoryEventType.EvaluationFailed,
            event_details=self.event_details(
                evaluationFailedEventDetails=failure.get_evaluation_failed_event_details()
            ),
        )
        return failure

    def runtime_error(self, env: Any, cause: str) -> Exception:
        """Return the `States.Runtime` failure to raise (as moto raises for a missing path)."""
        typ = self.error_type.StatesRuntime
        return self.failure_event.FailureEventException(
            failure_event=self.failure_event.FailureEvent(
                env=env,
                error_name=self.states_error_name(typ=typ),
                event_type=self.api.HistoryEventType.TaskFailed,
                event_details=self.event_details(
                    taskFailedEventDetails=self.api.TaskFailedEventDetails(
                        error=typ.to_name(), cause=cause
                    )
                ),
            )
        )


def patch_target(owner: Any, attribute: str) -> Callable[..., Any] | None:
    """Return moto's function to replace, or None when it is already replaced by these patches.

    Raises:
        JSONataCompatError: The attribute is missing, or another module replaced it.
    """
    original = getattr(owner, attribute, None)
    if original is not None and getattr(original, MARK, False):
        return None
    module = getattr(owner, "__module__", "")
    if original is None or getattr(original, "__module__", None) != module:
        raise JSONataCompatError(
            f"cannot complete moto's {getattr(owner, '__name__', owner)}.{attribute} for "
            f"JSONata and variables: it is not the function moto 5.2.5 ships; {PIN_HINT}"
        )
    return original


def replace(owner: Any, attribute: str, function: Callable[..., Any]) -> None:
    """Install `function` as `owner.attribute`, marked as this package's patch."""
    setattr(function, MARK, True)
    setattr(owner, attribute, function)


def variables_of(env: Any) -> dict[str, Any]:
    """Return the variables a state reads: those recorded at its entry, else the live ones."""
    store = env.variable_store
    recorded = getattr(store, ENTRY_VALUES, None)
    if recorded is not None:
        return dict(recorded)
    return {**store._outer_scope, **store._inner_scope}


def record_entry_values(env: Any) -> None:
    """Record the variables visible when a state is entered (shallow: Assign replaces values)."""
    store = env.variable_store
    setattr(store, ENTRY_VALUES, {**store._outer_scope, **store._inner_scope})
