"""Workflow variables (`Assign`, `$name`) in moto 5.2.5's interpreter, as AWS documents them.

AWS: "Passing data between states with variables"
(https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html). The guarded
patches below complete or correct moto's support; each names the moto code it changes:

- `variable-sample` completes `StringVariableSample._eval_body`
  (`...asl.component.common.string.string_expression`): `"x.$": "$name"` in a JSONPath state
  evaluated `$name` through moto's unset JSONata evaluator (`TypeError`). A variable that is not
  assigned fails the state with `States.Runtime`, as a JSONPath that matches nothing does,
  where moto would pass `null` on.
- `variables-at-entry` corrects `CommonStateField._eval_body` (`...asl.component.state.state`):
  every expression of a state reads the variables as they were when the state was entered
  (AWS: the assignments of a state take effect when it ends; `Output` and the other
  `Assign` values of the same state see the values from before). moto let `Output` read what
  `Assign` had just set.
- `outer-scope-assign` corrects `AssignDecl._eval_body` (`...asl.component.common.assign`): a
  state inside a Map iteration or a Parallel branch that assigns a variable of the outer scope
  fails with `States.Runtime` naming the state and the variable (moto raised a bare Python
  error reported against state `None`).
- `assign-string-literal` corrects
  `Preprocessor.visitAssign_template_value_terminal_string_literal`
  (`...asl.parse.preprocessor`): a string in `Assign` keeps JSON's escapes decoded (`"a\\"b"` is
  `a"b`), as in every other field; moto kept the raw text (`a\\"b`).
- `distributed-map-scope` corrects `DistributedItemProcessorWorker._eval_job`
  (`...state_map.iteration.itemprocessor.distributed_item_processor_worker`): the child
  workflow of a Distributed Map iteration cannot read the variables of the outer scope (AWS,
  variable scope); moto gave it a copy of them, as for an inline Map.
- `assigned-variables-json` corrects `VariableStore.get_assigned_variables`
  (`...asl.eval.variable_store`): the `assignedVariables` of a `*StateExited` history event
  hold each value "as a serialized JSON representation" (AWS API reference,
  StateExitedEventDetails); moto wrapped strings in quotes without escaping them
  (`"a"b"` for `a"b`).

The rest of the scoping is moto's and matches AWS: an inline Map iteration or a Parallel branch
gets a scope of its own holding a copy of the outer variables, which it can read but not assign;
the Map or Parallel state's own `Assign`/`Output` hand results to the outer scope.
"""

# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call,no-any-return"

from __future__ import annotations

import json
from typing import Any

from workflow.local.interpreter.jsonata_eval import QueryEvaluationError, evaluate
from workflow.local.interpreter.jsonata_moto import (
    MotoNames,
    patch_target,
    record_entry_values,
    replace,
    variables_of,
)

__all__ = ["field_name", "install_variables"]

# moto names the field being evaluated after its innermost component class; AWS after the
# ASL field. Known ones are translated; other class names are left out of the error cause.
_FIELD_NAMES = {
    "AssignDecl": "Assign",
    "AssignDeclBinding": "Assign",
    "ConditionStringJSONata": "Condition",
    "ItemsJSONata": "Items",
    "ItemsArray": "Items",
}


def field_name(env: Any) -> str | None:
    """Return the ASL field being evaluated, when moto's bookkeeping names it."""
    name = str(env.next_field_name or "")
    if name in _FIELD_NAMES:
        return _FIELD_NAMES[name]
    if not name or name[0].isupper():  # a moto class name, not a field of the document
        return None
    return name


def _patch_variable_sample(names: MotoNames) -> None:
    cls = names.string_expression.StringVariableSample
    if patch_target(cls, "_eval_body") is None:
        return
    jsonata_mode = names.query_language_mode.JSONata

    def _eval_body(self: Any, env: Any) -> None:
        bindings = variables_of(env)
        in_jsonata = self.query_language_mode == jsonata_mode
        if in_jsonata:
            bindings["states"] = env.states._states_data
        field = field_name(env)
        try:
            value = evaluate(self.expression, bindings, field)
        except QueryEvaluationError as exc:
            if in_jsonata:
                raise names.query_evaluation_error(env, exc.cause) from exc
            where = f" specified for the field '{field}'" if field else ""
            raise names.runtime_error(
                env,
                f"The variable reference '{self.expression}'{where} matched nothing: assign "
                "the variable in an earlier state (or in an outer scope) before reading it.",
            ) from exc
        env.stack.append(value)

    replace(cls, "_eval_body", _eval_body)


def _patch_variables_at_entry(names: MotoNames) -> None:
    cls = names.state.CommonStateField
    original = patch_target(cls, "_eval_body")
    if original is None:
        return

    def _eval_body(self: Any, env: Any) -> None:
        record_entry_values(env)
        original(self, env)

    replace(cls, "_eval_body", _eval_body)


def _patch_outer_scope_assign(names: MotoNames) -> None:
    cls = names.assign_decl.AssignDecl
    original = patch_target(cls, "_eval_body")
    if original is None:
        return
    illegal_write = names.variable_store.IllegalOuterScopeWrite

    def _eval_body(self: Any, env: Any) -> None:
        try:
            original(self, env)
        except illegal_write as exc:
            raise names.runtime_error(
                env,
                f"The state '{env.next_state_name}' cannot assign the variable "
                f"'{exc.variable_identifier}': it belongs to an outer scope. A Map iteration or "
                "Parallel branch can read outer variables but not assign them; return the "
                "value in the branch's output and assign it in the Map or Parallel state's "
                "Assign.",
            ) from exc

    replace(cls, "_eval_body", _eval_body)


def _patch_assign_string_literal(names: MotoNames) -> None:
    cls = names.preprocessor.Preprocessor
    attribute = "visitAssign_template_value_terminal_string_literal"
    if patch_target(cls, attribute) is None:
        return
    literal = names.preprocessor.AssignTemplateValueTerminalLit
    decode = names.antlr4utils.from_string_literal

    def visit(self: Any, ctx: Any) -> Any:
        return literal(value=decode(ctx.string_literal()))

    replace(cls, attribute, visit)


def _patch_distributed_map_scope(names: MotoNames) -> None:
    cls = names.distributed_worker.DistributedItemProcessorWorker
    original = patch_target(cls, "_eval_job")
    if original is None:
        return

    def _eval_job(self: Any, env: Any, job: Any) -> None:
        # `env` is the iteration's own frame; its store's outer scope is a copy made for it.
        env.variable_store._outer_scope.clear()
        original(self, env, job)

    replace(cls, "_eval_job", _eval_job)


def _patch_assigned_variables(names: MotoNames) -> None:
    cls = names.variable_store.VariableStore
    if patch_target(cls, "get_assigned_variables") is None:
        return

    def get_assigned_variables(self: Any) -> dict[str, str]:
        return {
            name: json.dumps(self.get(name), separators=(",", ":"), ensure_ascii=False)
            for name in self._declaration_tracing
        }

    replace(cls, "get_assigned_variables", get_assigned_variables)


def install_variables(names: MotoNames) -> None:
    """Apply the variables patches (idempotent)."""
    _patch_variable_sample(names)
    _patch_variables_at_entry(names)
    _patch_outer_scope_assign(names)
    _patch_assign_string_literal(names)
    _patch_assigned_variables(names)
    _patch_distributed_map_scope(names)
