"""Guarded fixes to how moto 5.2.5 reads and builds data (paths, intrinsics, context object).

Each `fix_*` function names the moto code it corrects, checks that its target is the code moto
5.2.5 ships (`expect_target`), and is applied once by `patches.apply_engine_patches()`:

- `definite-paths` (`moto...asl.utils.json_path.extract_json`): a path with an index followed
  by a field (`$.a[0].b`, `$['Payload']['metrics'][0]['Value']`) returned a one-element list;
  AWS returns the value of every definite path (fields and single indices only) and a list
  only for wildcards, slices, filters and recursive descent.
- `intrinsic-literals` (`asl.parse.preprocessor.Preprocessor.visitString_intrinsic_function`,
  `asl.parse.intrinsic.preprocessor.Preprocessor.visitFunc_arg_string`,
  `...generic.string_format.StringFormat._eval_body`): the intrinsic parser got the still
  JSON-escaped text, so `\\'` ended the literal and `\\{` crashed `States.Format`; AWS reads
  `\\'`, `\\{`, `\\}` and `\\\\` as `'`, `{`, `}` and `\\`, and an escaped brace is no placeholder.
  moto's intrinsic grammar has no `null` literal and silently dropped it (`States.Array(1,
  null)` gave `[1]`); the States Language allows `null` as an argument. A number literal with
  a fraction (`1.5`) crashed the parser (`visitFunc_arg_float` reads a missing `INT` token).
- `context-state` (`asl.component.state.state.StateData`): `$$.State` lacked `RetryCount` in
  Pass, Choice, Wait, Succeed and Fail states and `EnteredTime` ended in `+00:00` with
  microseconds; AWS gives `RetryCount` in every state and `2019-03-26T20:14:13.192Z`.
- `context-path-comparators` (the `*Path` Choice operators in `...operator.implementations`):
  a `$$.` reference path as a comparator's value failed to parse; AWS reads it from the
  context object.
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="attr-defined,no-any-return,method-assign,assignment,no-untyped-call,misc"

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from typing import Any, Final

from jsonpath_ng.ext import parse as parse_json_path
from jsonpath_ng.jsonpath import Child, Fields, Index, Root, This

from workflow.local.engine_types import aws_timestamp
from workflow.local.interpreter.moto_api import (
    Environment,
    asl_preprocessor,
    boolean_equals,
    defined_in,
    expect_target,
    intrinsic_argument,
    intrinsic_preprocessor,
    json_path,
    numeric,
    state_module,
    string_format,
    string_operators,
    timestamp_operators,
)

_PARSER_PACKAGE: Final = "moto.stepfunctions.parser"


# --------------------------------------------------------------------------------------------
# definite-paths
# --------------------------------------------------------------------------------------------


def _is_definite(expression: Any) -> bool:
    if isinstance(expression, Child):
        return _is_definite(expression.left) and _is_definite(expression.right)
    if isinstance(expression, (Root, This)):
        return True
    if isinstance(expression, Fields):
        return len(expression.fields) == 1 and expression.fields[0] != "*"
    if isinstance(expression, Index):
        return len(getattr(expression, "indices", (None,))) == 1
    return False


@functools.lru_cache(maxsize=1024)
def _definite_expression(path: str) -> Any:
    """Return the parsed path when it is definite, else None (parsing dominates path cost)."""
    expression = parse_json_path(path)
    return expression if _is_definite(expression) else None


def fix_definite_paths() -> None:
    """Make every definite path give its value, not a one-element list (see module docstring)."""
    original = json_path.extract_json
    expect_target(defined_in(original, json_path), "json_path.extract_json")
    missing = json_path.NoSuchJsonPathError

    def extract_json(path: str, data: Any) -> Any:
        expression = _definite_expression(path)
        if expression is None:
            return original(path, data)
        matches = expression.find(data)
        if not matches:
            raise missing(json_path=path, data=data)
        return matches[0].value

    # moto's modules import the function by name; replace every binding of the original.
    for name, module in list(sys.modules.items()):
        if name.startswith(_PARSER_PACKAGE) and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json


# --------------------------------------------------------------------------------------------
# intrinsic-literals
# --------------------------------------------------------------------------------------------

# A string literal that stands for a `null` argument (the grammar has no null token).
_NULL_SENTINEL: Final = "\ue000null\ue000"

_ESCAPES: Final[dict[str, str]] = {"'": "'", "\\": "\\", "{": "{", "}": "}"}
_MOTO_ESCAPES: Final[dict[str, str]] = {"n": "\n", "t": "\t", "r": "\r", '"': '"'}


def decode_intrinsic_string(literal: str) -> tuple[str, list[str]]:
    """Decode an intrinsic string literal's body; return (value, parts split at placeholders).

    `\\'`, `\\{`, `\\}` and `\\\\` stand for `'`, `{`, `}` and `\\` (AWS "Reserved characters in
    intrinsic functions"); only an unescaped `{}` is a `States.Format` placeholder.
    """
    value: list[str] = []
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(literal):
        char = literal[index]
        following = literal[index + 1] if index + 1 < len(literal) else ""
        if char == "\\" and following:
            decoded = _ESCAPES.get(following) or _MOTO_ESCAPES.get(following, "\\" + following)
            value.append(decoded)
            current.append(decoded)
            index += 2
        elif char == "{" and following == "}":
            value.append("{}")
            parts.append("".join(current))
            current = []
            index += 2
        else:
            value.append(char)
            current.append(char)
            index += 1
    parts.append("".join(current))
    return "".join(value), parts


def quote_null_arguments(derivation: str) -> str:
    """Replace each bare `null` argument of an intrinsic call by a sentinel string literal."""
    out: list[str] = []
    index, quoted = 0, False
    while index < len(derivation):
        char = derivation[index]
        if quoted:
            out.append(char)
            if char == "\\" and index + 1 < len(derivation):
                out.append(derivation[index + 1])
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
            out.append(char)
        elif (
            derivation.startswith("null", index)
            and derivation[:index].rstrip()[-1:] in ("(", ",")
            and derivation[index + 4 :].lstrip()[:1] in (")", ",")
        ):
            out.append(f"'{_NULL_SENTINEL}'")
            index += 4
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def fix_intrinsic_literals() -> None:
    """Decode JSON, then intrinsic escapes, as AWS does (see module docstring)."""
    asl_cls = asl_preprocessor.Preprocessor
    original_function = asl_cls.visitString_intrinsic_function
    expect_target(
        defined_in(original_function, asl_preprocessor),
        "Preprocessor.visitString_intrinsic_function",
    )
    arg_cls = intrinsic_preprocessor.Preprocessor
    original_string = arg_cls.visitFunc_arg_string
    expect_target(
        defined_in(original_string, intrinsic_preprocessor), "Preprocessor.visitFunc_arg_string"
    )
    original_float = arg_cls.visitFunc_arg_float
    expect_target(
        defined_in(original_float, intrinsic_preprocessor), "Preprocessor.visitFunc_arg_float"
    )
    format_cls = string_format.StringFormat
    original_format = format_cls._eval_body
    expect_target(defined_in(original_format, string_format), "StringFormat._eval_body")

    def visit_string_intrinsic_function(self: Any, ctx: Any) -> Any:
        # The token is the JSON string literal, quotes included: decode JSON first.
        derivation = json.loads(ctx.STRINGINTRINSICFUNC().getText())
        function, _ = asl_preprocessor.IntrinsicParser.parse(quote_null_arguments(derivation))
        return asl_preprocessor.StringIntrinsicFunction(
            intrinsic_function_derivation=derivation, function=function
        )

    def visit_func_arg_string(self: Any, ctx: Any) -> Any:
        value, parts = decode_intrinsic_string(ctx.STRING().getText()[1:-1])
        if value == _NULL_SENTINEL:
            return intrinsic_argument.ArgumentLiteral(definition_value=None)
        literal = intrinsic_argument.ArgumentLiteral(definition_value=value)
        literal.format_parts = parts
        return literal

    def visit_func_arg_float(self: Any, ctx: Any) -> Any:
        return intrinsic_argument.ArgumentLiteral(definition_value=float(ctx.NUMBER().getText()))

    def _eval_body(self: Any, env: Environment) -> None:
        self.argument_list.eval(env=env)
        args = env.stack.pop()
        template, values = args[0], [self._to_str_repr(value) for value in args[1:]]
        first = self.argument_list.arguments[0]
        parts = getattr(first, "format_parts", None) or str(template).split("{}")
        if len(parts) - 1 != len(values):
            raise ValueError(
                f"States.Format has {len(parts) - 1} placeholders but {len(values)} arguments "
                f"for the template {template!r}"
            )
        pieces = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            pieces += [value, part]
        env.stack.append("".join(pieces))

    asl_cls.visitString_intrinsic_function = visit_string_intrinsic_function
    arg_cls.visitFunc_arg_string = visit_func_arg_string
    arg_cls.visitFunc_arg_float = visit_func_arg_float
    format_cls._eval_body = _eval_body


# --------------------------------------------------------------------------------------------
# context-state
# --------------------------------------------------------------------------------------------


def fix_context_state() -> None:
    """Give `$$.State` a `RetryCount` in every state and AWS's `EnteredTime` format."""
    original = state_module.StateData
    expect_target(getattr(original, "__name__", "") == "StateData", "state.StateData")

    def state_data(*, EnteredTime: str, Name: str, **extra: Any) -> dict[str, Any]:
        entered = dt.datetime.fromisoformat(EnteredTime.replace("Z", "+00:00"))
        return {"EnteredTime": aws_timestamp(entered), "Name": Name, "RetryCount": 0, **extra}

    state_module.StateData = state_data


# --------------------------------------------------------------------------------------------
# context-path-comparators
# --------------------------------------------------------------------------------------------


def _path_operators() -> list[type]:
    modules = (boolean_equals, numeric, string_operators, timestamp_operators)
    return [
        cls
        for module in modules
        for name, cls in vars(module).items()
        if isinstance(cls, type) and name.endswith("Path") and defined_in(cls, module)
    ]


def fix_context_path_comparators() -> None:
    """Read a `$$.` comparator value from the context object (see module docstring)."""
    operators = _path_operators()
    expect_target(len(operators) >= 10, "the *Path Choice operators")
    for cls in operators:
        original = cls.eval
        expect_target(defined_in(original, cls.__module__), f"{cls.__name__}.eval")
        cls.eval = staticmethod(_context_aware(original))


def _context_aware(original: Any) -> Any:
    def eval_operator(env: Environment, value: Any) -> None:
        if not (isinstance(value, str) and value.startswith("$$")):
            original(env, value)
            return
        # The stack holds [..., input, variable]; the operator reads the path from `input`.
        saved, context = env.stack[-2], env.states.context_object.context_object_data
        env.stack[-2] = context
        try:
            original(env, value[1:])
        except Exception:
            if env.stack and env.stack[-1] is context:
                env.stack[-1] = saved
            raise
        result = env.stack.pop()
        env.stack[-1] = saved
        env.stack.append(result)

    return eval_operator
