"""moto 5.2.5's own behaviour where the seam patches it: each bug is still there, unpatched.

Each check runs in a fresh interpreter that imports moto's parser without applying the
engine's patches. When one fails after a moto upgrade, upstream fixed that bug: drop the patch
(workflow/local/interpreter) and its line in README's list of moto patches. The AWS behaviour
each patch gives is pinned by the contract tests (test_asl_data_flow.py, test_asl_intrinsics.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

_PRELUDE = """
import warnings
warnings.simplefilter("ignore")
from workflow.local.interpreter import moto_api as m
"""

CASES = {
    # definite-paths: an index followed by a field gives a one-element list.
    "definite-paths": """
assert m.json_path.extract_json("$.a[0].b", {"a": [{"b": 1}]}) == [1]
""",
    # intrinsic-literals: `null` is dropped, a fraction crashes the parser.
    "intrinsic-literals": """
from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser
function, _ = IntrinsicParser.parse("States.Array(1, null)")
assert function.argument_list.size == 1
try:
    IntrinsicParser.parse("States.Array(1.5)")
except AttributeError:
    pass
else:
    raise AssertionError("a fractional literal parses")
""",
    # context-state: $$.State has no RetryCount, EnteredTime is isoformat.
    "context-state": """
data = m.state_module.StateData(EnteredTime="2026-01-01T00:00:00.123456+00:00", Name="P")
assert "RetryCount" not in data
""",
    # context-path-comparators: a $$ path as a *Path comparator value does not parse.
    "context-path-comparators": """
class Env:
    stack = [{"v": 1}, 3]
try:
    m.numeric.NumericGreaterThanPath.eval(Env(), "$$.Execution.Input.t")
except Exception as exc:
    assert "JsonPathParserError" in type(exc).__name__ or "Parse error" in str(exc), exc
else:
    raise AssertionError("a context path comparator works")
""",
    # distributed-map: moto's grammar refuses a valid DISTRIBUTED Map (an integer
    # ToleratedFailurePercentage, ItemBatcher), and its tolerated-failure fields are ignored.
    "distributed-map": """
import json
def parses(map_fields):
    state = {"Type": "Map", "End": True, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, **map_fields}
    try:
        m.AmazonStateLanguageParser.parse(json.dumps({"StartAt": "M", "States": {"M": state}}))
    except m.ASLParserException:
        return False
    return True
assert not parses({"ToleratedFailurePercentage": 10})
assert not parses({"ItemBatcher": {"MaxItemsPerBatch": 2}})
import pathlib
assert "no effect" in pathlib.Path(m.asl_preprocessor.__file__).read_text()
""",
    # activity-start-wait: the start endpoint never sets `_outcome`; a wait that ends without a
    # worker raises AttributeError (the task failed with States.Runtime, not States.Timeout).
    "activity-start-wait": """
from moto.stepfunctions.parser.asl.eval.callback.callback import ActivityTaskStartEndpoint
try:
    ActivityTaskStartEndpoint().wait(timeout_seconds=0.01)
except AttributeError:
    pass
else:
    raise AssertionError("an unanswered start wait returns")
""",
    # activity-missing: `ActivityDoesNotExist()` is raised without its required message.
    "activity-missing": """
try:
    m.CallbackPoolManager(activity_store={}).add_activity_task(
        callback_id="t", activity_arn="arn:aws:states:us-east-1:1:activity:x", activity_input="{}"
    )
except TypeError:
    pass
else:
    raise AssertionError("a missing activity raises ActivityDoesNotExist")
""",
    # activity-heartbeat and activity-errors: a missed heartbeat is named plain States.Timeout;
    # a worker's `States.*` error raises ValueError in CustomErrorName.
    "activity-heartbeat-and-errors": """
class Env:
    next_state_name = "A"
    class event_history_context:
        source_event_id = 1
event = m.StateTaskActivity()._from_error(env=Env(), ex=m.HeartbeatTimeoutError())
assert event.error_name.error_name == "States.Timeout", event.error_name.error_name
failure = m.CallbackOutcomeFailure(callback_id="t", error="States.TaskFailed", cause="c")
try:
    m.StateTaskActivity()._from_error(env=Env(), ex=m.CallbackOutcomeFailureError(failure))
except ValueError:
    pass
else:
    raise AssertionError("a States.* error of a worker keeps its name")
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_moto_still_has_the_bug_its_patch_fixes(name):
    code = textwrap.dedent(_PRELUDE) + textwrap.dedent(CASES[name]) + "\nprint('bug present')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("bug present")
