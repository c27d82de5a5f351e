"""DISTRIBUTED Map states at run: child executions, tolerated failures, S3 items and results.

moto's distributed iteration (`...state_map.iteration.distributed_iteration_component`) runs
the items as inline iterations that ignore the tolerated failures (its preprocessor logs
"declarations currently have no effect"), writes an empty `manifest.json`, reads S3 through
boto, and its grammar refuses valid documents (see `distributed_parse`). The fix,
`distributed-map`, corrects `StateMap._eval_execution`
(`...asl.component.state.exec.state_map.state_map`) for the Maps `distributed_parse` marked:
items from `Items`/`ItemsPath` or the `ItemReader` on the engine's local S3
(`workflow.local.map_run`), `ItemSelector` with `$$.Map.Item`, batches, then one child
execution of the `ItemProcessor` per item or batch through the engine (its own `$$.Execution`,
ARN `...:execution:<machine>/<label>:<id>`), at most `MaxConcurrency` at a time; failed items
beyond the tolerance fail the state with `States.ExceedToleratedFailureThreshold`; results as
`ResultWriter` says.

https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call,typeddict-item,typeddict-unknown-key"

from __future__ import annotations

import contextlib
import copy
import time
import uuid
from typing import Any, Final

from workflow.local import map_run
from workflow.local.engine_types import aws_timestamp
from workflow.local.interpreter.distributed_parse import SPEC_ATTRIBUTE, DistributedSpec
from workflow.local.interpreter.host import ExecutionHost, error_name_for, host_for
from workflow.local.interpreter.moto_api import (
    Environment,
    EventDetails,
    FailureEvent,
    FailureEventException,
    HistoryEventType,
    defined_in,
    expect_target,
    state_map,
)

# Child executions running at once when MaxConcurrency is 0 (AWS: up to 10,000); local threads.
LOCAL_CONCURRENCY: Final = 40
_POLL_SECONDS: Final = 0.005


# -- run ----------------------------------------------------------------------------------------
def fix_distributed_map() -> None:
    """Run DISTRIBUTED Maps of engine executions as AWS does (child executions, S3)."""
    cls = state_map.StateMap
    original = cls._eval_execution
    expect_target(defined_in(original, state_map), "StateMap._eval_execution")

    def _eval_execution(self: Any, env: Environment) -> None:
        spec = getattr(self, SPEC_ATTRIBUTE, None)
        host = host_for(env)
        if spec is None or host is None:
            original(self, env)
            return
        try:
            run_distributed(self, env, spec, host)
        except map_run.MapRunFailure as failure:
            raise _failure(env, failure.error, failure.cause) from failure

    cls._eval_execution = _eval_execution


def _failure(env: Environment, error: str, cause: str) -> FailureEventException:
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=error_name_for(error),
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(mapRunFailedEventDetails={"error": error, "cause": cause}),
        )
    )


def _evaluate_template(env: Environment, spec: DistributedSpec) -> dict[str, Any]:
    if spec.template is None:
        return {}
    frame = env.open_frame()
    try:
        frame.states.reset(input_value=env.states.get_input())
        # moto evaluates payload templates with the input on the stack (as a state does).
        frame.stack.append(env.states.get_input())
        spec.template.eval(env=frame)
        value = frame.stack.pop()
    finally:
        env.close_frame(frame)
    return value if isinstance(value, dict) else {}


def _number(
    values: dict[str, Any],
    name: str,
    integer: bool,
    upper: float | None,
    error: str = "States.Runtime",
) -> Any:
    if name not in values:
        return None
    value = values[name]
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if not integer else int(value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if ok and integer and value != int(value):
        ok = False
    if ok and upper is not None and value > upper:
        ok = False
    if not ok:
        shown = int(upper) if upper is not None and float(upper).is_integer() else upper
        bound = f" and at most {shown}" if upper is not None else ""
        kind = "an integer" if integer else "a number"
        raise map_run.MapRunFailure(
            error,
            f"{name} evaluated to {value!r}; it must be {kind} >= 0{bound}",
        )
    return int(value) if integer else float(value)


def _items(
    self: Any, env: Environment, spec: DistributedSpec, host: ExecutionHost, values: Any
) -> list[Any]:
    if spec.reader_action is not None:
        params = values.get("ReaderParameters") or {}
        reader = map_run.ReaderSpec(
            **{
                **vars(spec.reader),
                "max_items": _number(
                    values, "MaxItems", True, 100_000_000, map_run.ITEM_READER_FAILED
                ),
            }
        )
        return map_run.read_items(host.s3, spec.reader_action, params, reader)
    if self.items_path is not None:
        self.items_path.eval(env=env)
    if self.items is not None:
        self.items.eval(env=env)
    items = env.stack.pop()
    if not isinstance(items, list):
        raise map_run.MapRunFailure(
            "States.QueryEvaluationError",
            f"Map state input must be an array but was: {type(items).__name__}",
        )
    return items


def _select(self: Any, env: Environment, index: int, item: Any) -> Any:
    selector = self.item_selector or self.parameters
    if selector is None:
        return item
    frame = env.open_inner_frame()
    try:
        context = frame.states.context_object.context_object_data
        context["State"] = copy.deepcopy(env.states.context_object.context_object_data["State"])
        context["Map"] = {"Item": {"Index": index, "Value": item}}
        frame.states.reset(input_value=env.states.get_input())
        frame.stack.append(env.states.get_input())
        selector.eval(env=frame)
        return frame.stack.pop()
    finally:
        env.delete_frame(frame)


def run_distributed(
    self: Any, env: Environment, spec: DistributedSpec, host: ExecutionHost
) -> None:
    """Evaluate one DISTRIBUTED Map state; push its result (the state's raw output)."""
    self.max_concurrency_decl.eval(env=env)
    max_concurrency = int(env.stack.pop() or 0)
    values = _evaluate_template(env, spec)
    items = _items(self, env, spec, host, values)
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.MapStateStarted,
        event_details=EventDetails(mapStateStartedEventDetails={"length": len(items)}),
    )
    inputs = [_select(self, env, i, item) for i, item in enumerate(items)]
    sizes = [1] * len(inputs)
    if spec.batching:
        batches = map_run.make_batches(
            inputs,
            _number(values, "MaxItemsPerBatch", True, None),
            _number(values, "MaxInputBytesPerBatch", True, map_run.MAX_BATCH_BYTES),
            values.get("BatchInput"),
        )
        inputs, sizes = list(batches), [len(b["Items"]) for b in batches]
    context = env.states.context_object.context_object_data
    machine = str(context["StateMachine"]["Name"])
    machine_arn = str(context["StateMachine"]["Id"])
    label = spec.label or self.name
    run_id = str(uuid.uuid4())
    map_run_arn = machine_arn.replace(":stateMachine:", ":mapRun:") + f"/{label}:{run_id}"
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.MapRunStarted,
        event_details=EventDetails(mapRunStartedEventDetails={"mapRunArn": map_run_arn}),
    )
    run = _ChildRun(host, env, spec, f"{machine}/{label}", max_concurrency)
    exceeded = run.run(
        inputs,
        sizes,
        _number(values, "ToleratedFailureCount", True, None),
        _number(values, "ToleratedFailurePercentage", False, 100),
    )
    if not env.is_running():
        env.stack.append(None)
        return
    try:
        result = _results(spec, values, host, map_run_arn, run)
        if exceeded:
            raise map_run.MapRunFailure(map_run.EXCEEDED, map_run.EXCEEDED_CAUSE)
    except map_run.MapRunFailure as failure:
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(
                mapRunFailedEventDetails={"error": failure.error, "cause": failure.cause}
            ),
        )
        raise
    env.event_manager.add_event(
        context=env.event_history_context, event_type=HistoryEventType.MapRunSucceeded
    )
    env.stack.append(result)


def _results(
    spec: DistributedSpec, values: dict[str, Any], host: ExecutionHost, arn: str, run: _ChildRun
) -> Any:
    records = [r for r in run.records if r is not None]
    if spec.writer_resource:
        params = values.get("WriterParameters") or {}
        bucket = params.get("Bucket")
        if not isinstance(bucket, str) or not bucket:
            raise map_run.MapRunFailure(
                map_run.RESULT_WRITER_FAILED,
                f"ResultWriter Parameters.Bucket = {bucket!r} must be a bucket name",
            )
        by_status: dict[str, list[map_run.ChildRecord]] = {"SUCCEEDED": [], "FAILED": []}
        for record in records:
            by_status["SUCCEEDED" if record.status == "SUCCEEDED" else "FAILED"].append(record)
        by_status["PENDING"] = run.pending_records()
        return map_run.write_results(
            host.s3,
            bucket,
            str(params.get("Prefix", "")),
            arn,
            by_status,
            spec.transformation or "NONE",
            spec.output_type,
        )
    return map_run.transform_results(records, spec.transformation or "COMPACT")


class _ChildRun:
    """Runs the child executions of one map run, `MaxConcurrency` at a time."""

    def __init__(
        self,
        host: ExecutionHost,
        env: Environment,
        spec: DistributedSpec,
        machine: str,
        max_concurrency: int,
    ) -> None:
        self.host = host
        self.env = env
        self.spec = spec
        self.machine = machine
        self.limit = max_concurrency if max_concurrency > 0 else LOCAL_CONCURRENCY
        self.records: list[map_run.ChildRecord | None] = []
        self.inputs: list[Any] = []

    def run(
        self, inputs: list[Any], sizes: list[int], count: int | None, percentage: float | None
    ) -> bool:
        """Run every input (or until the tolerance is exceeded); return True when exceeded."""
        self.inputs = inputs
        self.records = [None] * len(inputs)
        total_items = sum(sizes)
        running: dict[int, Any] = {}
        next_index = failed_items = 0
        exceeded = False
        while (next_index < len(inputs) or running) and self.env.is_running():
            while not exceeded and next_index < len(inputs) and len(running) < self.limit:
                running[next_index] = self.host.start_child(
                    self.spec.processor, inputs[next_index], self.machine
                )
                next_index += 1
            finished = [i for i, child in running.items() if child.done]
            if not finished:
                time.sleep(_POLL_SECONDS)
                continue
            for index in finished:
                record = self._record(index, running.pop(index))
                self.records[index] = record
                if record.status != "SUCCEEDED":
                    failed_items += sizes[index]
            if not exceeded and map_run.exceeds_tolerance(
                failed_items, total_items, count, percentage
            ):
                exceeded = True
                for child in running.values():
                    child.stop(error="States.ExceedToleratedFailureThreshold")
        for child in running.values():  # the parent stopped
            child.stop()
        return exceeded

    def _record(self, index: int, child: Any) -> map_run.ChildRecord:
        child.wait()
        return map_run.ChildRecord(
            arn=child.arn,
            name=child.name,
            state_machine_arn=child.state_machine_arn,
            input=self.inputs[index],
            status=child.status,
            start_date=aws_timestamp(child.start_date),
            stop_date=aws_timestamp(child.stop_date) if child.stop_date else None,
            output=child.output,
            error=child.error,
            cause=child.cause,
        )

    def pending_records(self) -> list[map_run.ChildRecord]:
        """Records of the inputs no child execution ran (the map run stopped first)."""
        return [
            map_run.ChildRecord(
                arn="",
                name="",
                state_machine_arn="",
                input=self.inputs[i],
                status="PENDING",
                start_date="",
            )
            for i, record in enumerate(self.records)
            if record is None
        ]
