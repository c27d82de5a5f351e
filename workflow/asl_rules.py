"""ASL rules shared by the structure checks: Choice rules, Retry, Catch, and value helpers.

Both query languages are covered: a JSONPath Choice rule compares a `Variable` with one
comparator (or nests And/Or/Not); a JSONata rule is a `Condition` (`{% ... %}`), per
https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

JSONATA: Final = "JSONata"
JSONPATH: Final = "JSONPath"

COMPARATORS: Final[dict[str, str]] = {
    **{f"String{op}": "string" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    **{f"Numeric{op}": "number" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    **{f"Timestamp{op}": "string" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    "BooleanEquals": "boolean",
    "StringMatches": "string",
    **{f"Is{kind}": "boolean" for kind in (
        "Null", "Present", "Numeric", "String", "Boolean", "Timestamp")},
}  # fmt: skip
PATH_COMPARATORS: Final = frozenset(
    f"{name}Path" for name in COMPARATORS if not name.startswith("Is") and name != "StringMatches"
)


def is_jsonata(value: Any) -> bool:
    """Return True for a JSONata expression string (`{% ... %}`)."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def is_path(value: Any) -> bool:
    """Return True for a JSONPath or context path (`$...`)."""
    return isinstance(value, str) and value.startswith("$")


def positive_int(value: Any) -> bool:
    """Return True for an integer > 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def non_negative_int(value: Any) -> bool:
    """Return True for an integer >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_type(value: Any, expected: str) -> bool:
    """Return True when `value` is a JSON `expected` (boolean, integer, number or string)."""
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def short(value: Any) -> str:
    """Return `repr(value)`, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def hint(name: str, candidates: Any) -> str:
    """Return ` (did you mean 'X'?)` for the closest candidate, or ''."""
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_target(target: Any, path: str, states: Mapping[str, Any], problems: list[str]) -> None:
    """Flag a transition that names no state of `states`."""
    if target is None:
        return
    if not isinstance(target, str) or target not in states:
        problems.append(f"{path}: {target!r} is not a state{hint(str(target), states)}")


# ---------------------------------------------------------------------------------------------
# Choice rules
# ---------------------------------------------------------------------------------------------


def check_choice(
    state: Mapping[str, Any],
    path: str,
    states: Mapping[str, Any],
    problems: list[str],
    language: str,
) -> None:
    """Check a Choice state's rules and targets."""
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        problems.append(f"{path}.Choices: must be a non-empty list of rules")
        return
    for i, rule in enumerate(choices):
        rule_path = f"{path}.Choices[{i}]"
        if language == JSONATA:
            _check_jsonata_rule(rule, rule_path, problems)
        else:
            check_rule(rule, rule_path, problems, top=True)
        if isinstance(rule, Mapping):
            check_target(rule.get("Next"), f"{rule_path}.Next", states, problems)
    check_target(state.get("Default"), f"{path}.Default", states, problems)


def _check_jsonata_rule(rule: Any, path: str, problems: list[str]) -> None:
    if not isinstance(rule, Mapping):
        problems.append(f"{path}: must be an object")
        return
    known = {"Condition", "Next", "Comment", "Assign", "Output"}
    for key in rule:
        if key not in known:
            problems.append(
                f"{path}: field {key!r} does not belong to a JSONata Choice rule (use "
                f"'Condition'){hint(key, known)}"
            )
    if "Next" not in rule:
        problems.append(f"{path}: a Choice rule needs 'Next'")
    condition = rule.get("Condition")
    if not (is_jsonata(condition) or isinstance(condition, bool)):
        problems.append(f"{path}.Condition: {short(condition)} must be a '{{% ... %}}' expression")


def check_rule(rule: Any, path: str, problems: list[str], *, top: bool) -> None:
    """Check one JSONPath Choice rule (recursively for And/Or/Not)."""
    if not isinstance(rule, Mapping):
        problems.append(f"{path}: must be an object")
        return
    if top and "Next" not in rule:
        problems.append(f"{path}: a top-level Choice rule needs 'Next'")
    if not top and "Next" in rule:
        problems.append(f"{path}: 'Next' is only allowed on top-level Choice rules")
    operators = [k for k in rule if k in ("And", "Or", "Not")]
    comparators = [k for k in rule if k in COMPARATORS or k in PATH_COMPARATORS]
    known = {"Next", "Variable", "Comment", "Assign", "And", "Or", "Not", *COMPARATORS,
             *PATH_COMPARATORS}  # fmt: skip
    for key in rule:
        if key not in known:
            problems.append(f"{path}: unknown field {key!r} in a Choice rule{hint(key, known)}")
    if len(operators) + len(comparators) != 1:
        problems.append(
            f"{path}: needs exactly one comparator (e.g. NumericGreaterThanEquals) or one of "
            f"And/Or/Not, found {', '.join(operators + comparators) or 'none'}"
        )
        return
    if operators:
        op = operators[0]
        if "Variable" in rule:
            problems.append(f"{path}: {op} takes no 'Variable'")
        if op == "Not":
            check_rule(rule["Not"], f"{path}.Not", problems, top=False)
        elif not isinstance(rule[op], list) or not rule[op]:
            problems.append(f"{path}.{op}: must be a non-empty list of rules")
        else:
            for i, sub in enumerate(rule[op]):
                check_rule(sub, f"{path}.{op}[{i}]", problems, top=False)
        return
    comparator = comparators[0]
    variable = rule.get("Variable")
    if not is_path(variable):
        problems.append(f"{path}.Variable: {variable!r} must be a path starting with '$'")
    value = rule[comparator]
    if comparator in PATH_COMPARATORS:
        if not is_path(value):
            problems.append(f"{path}.{comparator}: {value!r} must be a path starting with '$'")
        return
    expected = COMPARATORS[comparator]
    if not is_type(value, expected):
        problems.append(f"{path}.{comparator}: {value!r} must be a {expected}")


# ---------------------------------------------------------------------------------------------
# Retry and Catch
# ---------------------------------------------------------------------------------------------


def _check_error_equals(errors: Any, path: str, problems: list[str]) -> None:
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
        problems.append(f"{path}.ErrorEquals: must be a non-empty list of error names")
        return
    if "States.ALL" in errors and errors != ["States.ALL"]:
        problems.append(f"{path}.ErrorEquals: States.ALL must be the only error name")


def _check_all_last(entries: list[Any], path: str, problems: list[str]) -> None:
    for i, entry in enumerate(entries[:-1]):
        if isinstance(entry, Mapping) and entry.get("ErrorEquals") == ["States.ALL"]:
            problems.append(f"{path}[{i}]: States.ALL must be in the last entry")


def check_retry(retry: Any, path: str, problems: list[str]) -> None:
    """Check a Retry list (fields, intervals, BackoffRate, States.ALL last)."""
    if retry is None:
        return
    if not isinstance(retry, list):
        problems.append(f"{path}: must be a list of retriers")
        return
    allowed = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "Comment",
               "MaxDelaySeconds", "JitterStrategy"}  # fmt: skip
    for i, entry in enumerate(retry):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{entry_path}: must be an object")
            continue
        for key in entry:
            if key not in allowed:
                problems.append(f"{entry_path}: unknown field {key!r}{hint(key, allowed)}")
        _check_error_equals(entry.get("ErrorEquals"), entry_path, problems)
        if "IntervalSeconds" in entry and not positive_int(entry["IntervalSeconds"]):
            problems.append(f"{entry_path}.IntervalSeconds: must be a positive integer")
        if "MaxAttempts" in entry and not non_negative_int(entry["MaxAttempts"]):
            problems.append(f"{entry_path}.MaxAttempts: must be a non-negative integer")
        rate = entry.get("BackoffRate", 2.0)
        if not is_type(rate, "number") or rate < 1.0:
            problems.append(f"{entry_path}.BackoffRate: {rate!r} must be a number >= 1.0")
        if entry.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
            problems.append(f"{entry_path}.JitterStrategy: must be 'FULL' or 'NONE'")
    _check_all_last(retry, path, problems)


def check_catch(
    catch: Any, path: str, states: Mapping[str, Any], problems: list[str], language: str
) -> None:
    """Check a Catch list (fields for the query language, targets, States.ALL last)."""
    if catch is None:
        return
    if not isinstance(catch, list):
        problems.append(f"{path}: must be a list of catchers")
        return
    allowed = {"ErrorEquals", "Next", "Comment", "Assign"}
    allowed |= {"Output"} if language == JSONATA else {"ResultPath"}
    for i, entry in enumerate(catch):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{entry_path}: must be an object")
            continue
        for key in entry:
            if key not in allowed:
                problems.append(
                    f"{entry_path}: field {key!r} does not belong to a {language} catcher"
                    f"{hint(key, allowed)}"
                )
        _check_error_equals(entry.get("ErrorEquals"), entry_path, problems)
        if "Next" not in entry:
            problems.append(f"{entry_path}: needs 'Next'")
        check_target(entry.get("Next"), f"{entry_path}.Next", states, problems)
        result = entry.get("ResultPath", "$")
        if result is not None and not is_path(result):
            problems.append(f"{entry_path}.ResultPath: {result!r} must be a path or null")
    _check_all_last(catch, path, problems)
