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


def install() -> None:
    """Complete moto's JSONata and variables support (idempotent; call before parsing).

    Raises:
        JSONataCompatError: moto is not 5.2.5, or a function to patch is not moto's.
    """
    names = MotoNames.load()
    _patch_expression(names)
    _patch_condition(names)
    install_variables(names)


def installed() -> bool:
    """Return whether `install()` has completed moto's JSONata evaluation in this process."""
    names = MotoNames.load()
    return bool(getattr(names.string_expression.StringJSONata._eval_body, MARK, False))
