"""JSONata in moto 5.2.5's ASL interpreter: the evaluator moto leaves unset, completed.

moto parses `QueryLanguage`, `Arguments`, `Output`, `Assign`, `Condition`, `Items`,
`ItemSelector` and `{% %}` expressions in every field, but evaluates each expression through
`moto.stepfunctions.parser.asl.jsonata.jsonata.eval_jsonata_expression`, whose evaluator pointer
`_eval_jsonata` is left `None` (LocalStack's JVM bridge was stripped in the port): every
expression, and every `$var` read, fails with `TypeError: 'NoneType' object is not callable`
(moto issue 10105).

`install()` is the one entry point (the engine calls it when it applies its moto patches, never
at import). Its guarded patches, each naming the moto code it completes or corrects:

- `jsonata-expression` completes `StringJSONata._eval_body`
  (`...asl.component.common.string.string_expression`): the expression is evaluated by the
  pure-Python `jsonata-python` with `$states`, the workflow variables and the Step Functions
  functions (`jsonata_functions`) bound as values. moto would splice those values into the
  expression text (strings unescaped, so a value holding `"` breaks it) and stubs `$hash` and
  `$uuid` with a string. A failure, or a result JSON cannot hold, fails the state with
  `States.QueryEvaluationError` and an `EvaluationFailed` history event.
- `condition-boolean` corrects `ConditionStringJSONata._eval_body`
  (`...asl.component.state.choice.comparison.comparison`): a `Condition` that is not a boolean
  fails with `States.QueryEvaluationError` naming the value, not a bare `RuntimeError`.
- `choice-default-output` corrects `StateChoice._eval_state_output` (with a marker set by
  `ChoiceRule._eval_body`, `...asl.component.state.choice`): the Choice state's own `Assign`
  and `Output` apply only when no rule matched (AWS: they go with `Default`). moto guessed
  "Default taken" from the next state's name, so a matching rule whose `Next` is also the
  `Default` got both its own and the state's `Assign`/`Output`, the second one evaluated on
  the first one's output.
- `query-language-scope` corrects `Preprocessor.visitState_machine` (`...asl.parse.preprocessor`):
  moto keeps the stack of `QueryLanguage` scopes in a class attribute shared by every parse
  (`_query_language_per_scope = []`), so a document refused half-way (e.g. a JSONPath state in
  a JSONata machine) leaves a scope behind and every later JSONPath document in the process is
  refused ("Unsupported declaration in QueryLanguage=JSONPath block"); concurrent parses mix
  their scopes. Each parse now gets its own stack.
- the variables patches of `workflow.local.interpreter.variables`.

AWS reference: https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
"""

# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call"

from __future__ import annotations

import json
from typing import Any

from workflow.local.interpreter.jsonata_eval import QueryEvaluationError, evaluate
from workflow.local.interpreter.jsonata_moto import (
    MARK,
    PIN_HINT,
    JSONataCompatError,
    MotoNames,
    patch_target,
    replace,
    variables_of,
)
from workflow.local.interpreter.variables import field_name, install_variables

__all__ = ["JSONataCompatError", "install", "installed"]


def _patch_expression(names: MotoNames) -> None:
    cls = names.string_expression.StringJSONata
    if patch_target(cls, "_eval_body") is None:
        return

    def _eval_body(self: Any, env: Any) -> None:
        bindings = variables_of(env)
        bindings["states"] = env.states._states_data
        try:
            value = evaluate(self.expression, bindings, field_name(env))
        except QueryEvaluationError as exc:
            raise names.query_evaluation_error(env, exc.cause) from exc
        env.stack.append(value)

    replace(cls, "_eval_body", _eval_body)


def _patch_condition(names: MotoNames) -> None:
    cls = names.comparison.ConditionStringJSONata
    if patch_target(cls, "_eval_body") is None:
        return

    def _eval_body(self: Any, env: Any) -> None:
        self.string_jsonata.eval(env=env)
        result = env.stack[-1]
        if not isinstance(result, bool):
            raise names.query_evaluation_error(
                env,
                f"The JSONata expression '{self.string_jsonata.expression}' specified for the "
                f"field 'Condition' returned {json.dumps(result)}, not a boolean.",
            )

    replace(cls, "_eval_body", _eval_body)


_RULE_MATCHED = "_workflow_choice_rule_matched"


def _patch_choice_default(names: MotoNames) -> None:
    rule_cls = names.choice_rule.ChoiceRule
    rule_original = patch_target(rule_cls, "_eval_body")
    if rule_original is not None:

        def _rule_eval_body(self: Any, env: Any) -> None:
            rule_original(self, env)
            # Only top-level rules have a Next; rules nested in And/Or/Not do not.
            if self.next_stmt is not None and env.stack and env.stack[-1] is True:
                setattr(env, _RULE_MATCHED, True)

        replace(rule_cls, "_eval_body", _rule_eval_body)

    cls = names.state_choice.StateChoice
    if patch_target(cls, "_eval_state_output") is None:
        return

    def _eval_state_output(self: Any, env: Any) -> None:
        # moto's method, with "Default taken" known instead of guessed from the name.
        matched = bool(getattr(env, _RULE_MATCHED, False))
        setattr(env, _RULE_MATCHED, False)
        next_state_name = env.stack.pop()
        if not matched and self.default_state is not None:
            if self.assign_decl:
                self.assign_decl.eval(env=env)
            if self.output:
                self.output.eval(env=env)
        if self._is_language_query_jsonpath():
            if self.output_path:
                self.output_path.eval(env=env)
            else:
                env.states.reset(input_value=env.stack.pop())
        env.next_state_name = next_state_name

    replace(cls, "_eval_state_output", _eval_state_output)


def _patch_query_language_scope(names: MotoNames) -> None:
    cls = names.preprocessor.Preprocessor
    original = patch_target(cls, "visitState_machine")
    if original is None:
        return
    if not isinstance(cls.__dict__.get("_query_language_per_scope"), list):
        raise JSONataCompatError(
            "moto's Preprocessor no longer keeps its QueryLanguage scopes in the class attribute "
            f"_query_language_per_scope; drop the query-language-scope patch; {PIN_HINT}"
        )

    def visitState_machine(self: Any, ctx: Any) -> Any:
        self._query_language_per_scope = []
        return original(self, ctx)

    replace(cls, "visitState_machine", visitState_machine)


def install() -> None:
    """Complete moto's JSONata and variables support (idempotent; call before parsing).

    Raises:
        JSONataCompatError: moto is not 5.2.5, or a function to patch is not moto's.
    """
    names = MotoNames.load()
    _patch_query_language_scope(names)
    _patch_expression(names)
    _patch_condition(names)
    _patch_choice_default(names)
    install_variables(names)


def installed() -> bool:
    """Return whether `install()` has completed moto's JSONata evaluation in this process."""
    names = MotoNames.load()
    return bool(getattr(names.string_expression.StringJSONata._eval_body, MARK, False))
