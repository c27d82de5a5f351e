"""Workflow faults on the rendered definition, run by the local runtime.

The container here is the stand-in of `standin/` (the container contract without torch), so
each execution takes seconds; the real container's faults are in test_training_faults.py. The
engine, the local SageMaker/SNS handlers, the Lambdas, the store and the outbox are the real
ones. Engine sleeps (Retry backoff, Wait states) are scaled by 0.01; the recorded waits keep
their unscaled length, which is what the backoff assertions read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import Harness, Tally, alive, entered, new_descendants, process_tree, wait_for

from workflow.local.engine import TaskFailed

pytestmark = pytest.mark.integration

AREA = "workflow faults"


class Flaky:
    """Wrap a handler so that its first `failures` calls raise `error`, then pass through."""

    def __init__(self, handler: Callable[..., Any], error: str, failures: int) -> None:
        self.handler = handler
        self.error = error
        self.failures = failures
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self.lock:
            self.calls += 1
            fail = self.calls <= self.failures
        if fail:
            raise TaskFailed(self.error, f"Rate exceeded (injected fault {self.calls})")
        return self.handler(*args)


def _succeeded(execution: Any, timeout: float = 180, extra: Any = None) -> None:
    execution.wait(timeout)
    assert execution.done, f"{execution.name} still runs after {timeout} s"
    assert execution.status == "SUCCEEDED", (
        execution.status,
        execution.error,
        str(execution.cause)[:300],
    )


def _retry_of(definition: Mapping[str, Any], state: str, error: str) -> dict[str, Any]:
    for retrier in definition["States"][state].get("Retry", []):
        if error in retrier["ErrorEquals"]:
            return dict(retrier)
    raise AssertionError(f"{state} has no Retry for {error}")


# state, (service, action) or lambda, error, failures injected
INJECTIONS = [
    ("Train", ("sagemaker", "createTrainingJob"), "SageMaker.ThrottlingException", 2),
    ("CreateModel", ("sagemaker", "createModel"), "ThrottlingException", 3),
    ("ComputeMetrics", "evaluate", "Lambda.TooManyRequestsException", 2),
    ("CreateEndpointConfig", ("sagemaker", "createEndpointConfig"), "ServiceUnavailable", 3),
    ("FindEndpoint", ("aws-sdk:sagemaker", "describeEndpoint"), "SageMaker.ThrottlingException", 2),
    ("RegisterModel", ("aws-sdk:sagemaker", "createModelPackage"), "ThrottlingException", 2),
    ("NotifySuccess", ("sns", "publish"), "SNS.ThrottledException", 3),
]


def test_throttling_and_transient_errors_are_retried_with_backoff(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    from workflow.definition import render_json
    from workflow.lambdas import evaluate
    from workflow.local.sagemaker_endpoints import EndpointConfigHandler, ModelHandler
    from workflow.local.sns import SnsPublishHandler

    harness = make_harness()
    runtime = harness.runtime
    definition = json.loads(render_json(harness.config))
    originals: dict[Any, tuple[Callable[..., Any], Any, Any]] = {
        ("sagemaker", "createTrainingJob"): (
            runtime.training.start,
            runtime.training.poll,
            runtime.training.cancel,
        ),
        ("sagemaker", "createModel"): (
            ModelHandler(runtime.sagemaker, runtime.registry).start,
            None,
            None,
        ),
        ("sagemaker", "createEndpointConfig"): (
            EndpointConfigHandler(runtime.sagemaker).start,
            None,
            None,
        ),
        ("aws-sdk:sagemaker", "describeEndpoint"): (runtime.endpoints.describe, None, None),
        ("aws-sdk:sagemaker", "createModelPackage"): (runtime.registry.create_package, None, None),
        ("sns", "publish"): (SnsPublishHandler(runtime.outbox).start, None, None),
    }
    flaky: dict[str, Flaky] = {}
    for state, target, error, failures in INJECTIONS:
        if isinstance(target, tuple):
            start, poll, cancel = originals[target]
            flaky[state] = Flaky(start, error, failures)
            runtime.engine.register_service(*target, flaky[state], poll, cancel)
        else:
            flaky[state] = Flaky(
                lambda payload, ctx: evaluate.handler(payload, None), error, failures
            )
            runtime.engine.register_lambda(getattr(harness.config.lambdas, target), flaky[state])

    execution = harness.start()
    _succeeded(execution)

    waits = execution.waits
    for state, _, error, failures in INJECTIONS:
        retrier = _retry_of(definition, state, error)
        expected = [
            retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n for n in range(failures)
        ]
        backoffs = [w.seconds for w in waits if w.state_name == state]
        row = tally.row(AREA, "injected throttling/transient errors, retried then succeeded")
        ok = backoffs == expected and flaky[state].calls >= failures + 1
        row.count(f"{state}: {failures} faults, {flaky[state].calls} attempts", not ok)
        assert backoffs == expected, f"{state}: backoff {backoffs}, expected {expected}"
        assert flaky[state].calls >= failures + 1
    # the model was deployed once, the notification sent once, despite the faults
    assert entered(execution).count("CreateEndpoint") == 1
    assert [m["Subject"] for m in harness.outbox()].count("mask-r-cnn-mlops: model deployed") == 1
    # one model package despite the retried CreateModelPackage, approved (auto) before deploying
    [summary] = runtime.registry.list_packages({})["ModelPackageSummaryList"]
    package = runtime.registry.describe_package({"ModelPackageName": summary["ModelPackageArn"]})
    assert package["ModelApprovalStatus"] == "Approved"
    assert json.loads(package["ApprovalDescription"])["Mode"] == "auto"
    assert package["MetadataProperties"]["GeneratedBy"] == execution.arn


def test_retries_give_up_after_max_attempts_then_catch_notify_fail(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    """A throttle that never ends: the retries are exhausted, the Catch notifies and fails."""
    from workflow.definition import render_json
    from workflow.local.sagemaker_endpoints import ModelHandler

    harness = make_harness()
    definition = json.loads(render_json(harness.config))
    retrier = _retry_of(definition, "CreateModel", "ThrottlingException")
    forever = Flaky(ModelHandler(harness.runtime.sagemaker).start, "ThrottlingException", 10**6)
    harness.engine.register_service("sagemaker", "createModel", forever)
    execution = harness.start()
    execution.wait(120)
    assert execution.status == "FAILED"
    assert execution.error == "CreateModel.ThrottlingException"
    assert forever.calls == retrier["MaxAttempts"] + 1
    notes = harness.failure_notes()
    assert [n["State"] for n in notes] == ["CreateModel"]
    assert "BatchTransform" not in entered(execution)
    tally.row(AREA, "endless throttling: retries exhausted, caught, notified, failed").count(
        f"{forever.calls} attempts"
    )


def test_training_failure_is_caught_notified_and_failed(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    harness = make_harness()
    annotations = harness.data_path(harness.data["TrainingData"] + "annotations.json")
    annotations.write_text('{"images": [')
    execution = harness.start()
    execution.wait(120)
    job_dir = harness.runtime.store.root / "jobs" / execution.input["TrainingJobName"]
    sentence = (job_dir / "algo-1" / "output" / "failure").read_text().splitlines()[0]
    notes = harness.failure_notes()
    ok = (
        execution.status == "FAILED"
        and execution.error == "Train.States.TaskFailed"
        and sentence in str(execution.cause)
        and len(notes) == 1
        and notes[0]["State"] == "Train"
        and sentence in notes[0]["Cause"]
    )
    tally.row(AREA, "training failure caught, notified, failed").count(
        "FAILED + notified" if ok else str(execution.status), not ok
    )
    assert execution.status == "FAILED", execution.status
    assert execution.error == "Train.States.TaskFailed"  # <State>.<error>, see definition.py
    assert sentence.startswith("training/annotations.json is not valid JSON")
    assert sentence in str(execution.cause)
    assert len(notes) == 1 and notes[0]["State"] == "Train" and sentence in notes[0]["Cause"]
    assert notes[0]["CommitId"] == "abc1234"
    states = entered(execution)
    assert states[-3:] == ["TrainFailed", "NotifyFailure", "Failed"]
    assert "CreateModel" not in states
    record = harness.runtime.sagemaker.records.get(
        "training-jobs", execution.input["TrainingJobName"]
    )
    assert record["TrainingJobStatus"] == "Failed"


def _approval_token(root: Path, timeout: float = 60) -> str:
    folder = root / "callbacks"
    found: list[Path] = []
    wait_for(lambda: found.extend(folder.glob("*.request.json")) or found, timeout)
    assert found, f"no approval request appeared under {folder}"
    return str(json.loads(found[0].read_text())["token"])


def test_rejected_approval_ends_in_rejected(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    from workflow.local.callbacks import respond_if_pending

    harness = make_harness(approve="manual")
    execution = harness.start()
    token = _approval_token(harness.runtime.root)
    assert respond_if_pending(harness.runtime.root, token, "reject", "the masks look wrong")
    execution.wait(60)
    # answering again (approve after the reject) changes nothing
    respond_if_pending(harness.runtime.root, token, "approve")
    time.sleep(0.5)
    states = entered(execution)
    ok = execution.status == "FAILED" and execution.error == "Rejected"
    ok = ok and "CreateEndpointConfig" not in states
    tally.row(AREA, "rejected approval").count(str(execution.error), not ok)
    assert execution.status == "FAILED"
    assert execution.error == "Rejected"
    notes = harness.failure_notes()
    assert [n["State"] for n in notes] == ["RequestApproval"]
    assert "the masks look wrong" in notes[0]["Reason"]
    assert "CreateEndpointConfig" not in states and "CreateEndpoint" not in states
    assert harness.runtime.endpoint_url(harness.config.endpoint.name) is None
    # the model registry records the rejection and its reason (README "Model registry")
    registry = harness.runtime.registry
    [summary] = registry.list_packages({})["ModelPackageSummaryList"]
    package = registry.describe_package({"ModelPackageName": summary["ModelPackageArn"]})
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "the masks look wrong" in package["ApprovalDescription"]
    # the late approval (whether or not a response file was written) deployed nothing
    assert execution.status == "FAILED" and execution.error == "Rejected"
    assert not [m for m in harness.outbox() if "deployed" in str(m.get("Subject"))]


def test_redrive_after_the_fix_resumes_from_the_failed_state(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    """The test split loses its objects: ComputeMetrics fails; fixed, the redrive resumes there."""
    harness = make_harness()
    test_annotations = harness.data_path(harness.data["TestData"] + "annotations.json")
    good = test_annotations.read_text()
    broken = json.loads(good)
    broken["annotations"] = []
    test_annotations.write_text(json.dumps(broken))
    first = harness.start()
    first.wait(120)
    assert first.status == "FAILED", first.status
    assert "ComputeMetricsFailed" in entered(first)
    jobs_before = sorted(p.name for p in (harness.runtime.store.root / "jobs").iterdir())

    # what 'run --local --redrive' does: the run is saved, its record cut after the failed task
    from workflow.local.pipeline import redrive_record, save_run

    save_run(harness.runtime.store, first)
    test_annotations.write_text(good)  # the fix
    redriven = harness.engine.redrive(redrive_record(harness.runtime.store))
    _succeeded(redriven, extra=harness)
    history = redriven.history()
    redrive_at = next(i for i, e in enumerate(history) if str(e.get("type")) == "ExecutionRedriven")
    after = [
        str(e.get("stateEnteredEventDetails", {}).get("name"))
        for e in history[redrive_at:]
        if str(e.get("type", "")).endswith("StateEntered")
    ]
    jobs_after = sorted(p.name for p in (harness.runtime.store.root / "jobs").iterdir())
    redone = {"BuildImage", "Train", "CreateModel", "BatchTransform"} & set(after)
    ok = after[0] == "ComputeMetrics" and not redone and jobs_after == jobs_before
    tally.row(AREA, "redrive after the fix").count(
        f"resumed at {after[0]}, redone {sorted(redone) or 'nothing'}", not ok
    )
    assert after[0] == "ComputeMetrics", after
    assert not redone, f"the redrive ran {sorted(redone)} again"
    assert jobs_after == jobs_before  # no training job was started again
    assert after[-1] == "Succeeded"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_commit_twice_never_overwrites_the_first_run(
    make_harness: Callable[..., Harness], tally: Tally
) -> None:
    harness = make_harness()
    store = harness.runtime.store
    first = harness.start(commit="feedbee")
    _succeeded(first)
    s3_before = _files(store.root / "s3")
    records = harness.runtime.sagemaker.records
    model_before = records.get("models", first.input["ModelName"])
    config_before = records.get("endpoint-configs", first.input["EndpointConfigName"])
    assert model_before is not None and config_before is not None

    second = harness.start(commit="feedbee")
    _succeeded(second)
    assert second.input["JobName"] != first.input["JobName"]
    # a third run that reuses the first run's names outright must fail without writing
    replay = harness.engine.start_execution(
        first.definition,
        first.input,
        name=first.name + "-again",
        state_machine_name=harness.config.name,
    )
    replay.wait(120)

    s3_after = _files(store.root / "s3")
    changed = [k for k, v in s3_before.items() if s3_after.get(k) != v]
    ok = (
        not changed
        and records.get("models", first.input["ModelName"]) == model_before
        and records.get("endpoint-configs", first.input["EndpointConfigName"]) == config_before
        and replay.status == "FAILED"
    )
    tally.row(AREA, "same commit twice (+ a replay of the first run's names)").count(
        "nothing overwritten" if ok else "overwritten", not ok
    )
    assert not changed, f"the second run changed the first run's objects: {changed[:5]}"
    assert records.get("models", first.input["ModelName"]) == model_before
    assert records.get("endpoint-configs", first.input["EndpointConfigName"]) == config_before
    assert len(s3_after) > len(s3_before)  # the second run wrote its own objects beside them
    assert replay.status == "FAILED"
    assert "already existing" in str(replay.cause) or "exists already" in str(replay.cause)
    endpoint = harness.runtime.endpoints.describe(
        {"EndpointName": harness.config.endpoint.name}, None
    )
    assert endpoint["EndpointConfigName"] == second.input["EndpointConfigName"]


@pytest.mark.parametrize("stop_at", ["Train", "BatchTransform", "WaitForEndpoint"])
def test_stopping_an_execution_stops_its_jobs_and_endpoints(
    make_harness: Callable[..., Harness], tally: Tally, stop_at: str
) -> None:
    """Stop while a training job, a batch transform or a fresh endpoint runs: nothing is left."""
    before = set(process_tree(os.getpid()))
    overrides: dict[str, Any] = {
        "Train": {"local.hyperparameters": {"sleep_seconds": "120"}},
        # local runs poll with local.poll_seconds: a 36 s wait at the 0.01 time scale
        "WaitForEndpoint": {"local.poll_seconds": 3600},
    }.get(stop_at, {})
    harness = make_harness(**overrides)
    given: dict[str, Any] = {}
    if stop_at == "WaitForEndpoint":
        # WaitForBuild polls with the same seconds: an image in the input skips the build
        given["ImageUri"] = harness.runtime.images.snapshot("abc1234")
    if stop_at == "BatchTransform":
        # a long transform: its server runs, and the job reports "in progress" until stopped
        transform = harness.runtime.transform
        harness.engine.register_service(
            "sagemaker", "createTransformJob", transform.start, lambda s, c: None, transform.cancel
        )
    reached = threading.Event()
    harness.engine.on_event(
        lambda e: (
            reached.set()
            if str(e.event.get("type", "")).endswith("StateEntered") and e.state_name == stop_at
            else None
        )
    )
    execution = harness.start(**given)
    assert reached.wait(120), f"{stop_at} was never entered: {entered(execution)}"
    assert wait_for(lambda: new_descendants(before), 60), f"no process runs at {stop_at}"
    running = new_descendants(before)
    assert not execution.done, f"{execution.name} ended before the stop: {execution.status}"
    execution.stop("Stopped", f"stopped at {stop_at} by the reliability test")
    execution.wait(60)
    harness.runtime.close()
    gone = wait_for(lambda: not new_descendants(before), 30)
    left = new_descendants(before)
    ok = execution.status == "ABORTED" and gone
    tally.row(AREA, "stop an execution: no process left").count(
        f"stopped at {stop_at}: {len(running)} processes, {len(left)} left", not ok
    )
    assert execution.status == "ABORTED", execution.status
    assert not left, f"processes left after the stop at {stop_at}: {left}"
    assert all(not alive(pid) for pid in running)


def test_redrive_after_a_train_failure_reaches_the_end(
    tmp_path: Path, tally: Tally, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --local --redrive` after Train failed: the redriven Train may reuse its job's name.

    SageMaker refuses a training job name twice (ValidationException, "Cannot create already
    existing training job": https://docs.aws.amazon.com/sagemaker/latest/APIReference/
    API_CreateTrainingJob.html), so the redrive used to fail again after 70 s of retries and
    advise `--redrive` once more. The failed job is now kept under `redriven/` and its name freed,
    and a validation error is never retried.
    """
    from reliability_kit import FAST_HYPERPARAMETERS, FAST_LOCAL, REPO, STAND_IN

    from workflow.config import load_config
    from workflow.local.pipeline import ensure_dataset, run_pipeline
    from workflow.local.report import Progress
    from workflow.local.store import LocalStore

    root = tmp_path / "root"
    settings = {**FAST_LOCAL, "local.poll_seconds": 0,
                "local.hyperparameters": dict(FAST_HYPERPARAMETERS)}  # fmt: skip
    config = load_config(REPO / "workflow.yaml", environ={}, overrides=settings)
    store = LocalStore(root)
    data = ensure_dataset(store, config)
    annotations = Path(store.path(data["TrainingData"] + "annotations.json"))
    good = annotations.read_bytes()
    annotations.write_text('{"images": [')  # the fault: Train fails
    options = {"root": root, "approve": "auto", "commit": "abc1234", "container_dir": STAND_IN,
               "time_scale": 0.01, "poll_interval": 0.2, "use_docker": False,
               "stop_grace_seconds": 5, "echo": False, "progress": Progress(verbose=False)}  # fmt: skip
    first = run_pipeline(config, **options)
    assert first.status == "FAILED", first.summary
    assert first.summary["execution_error"] == "Train.States.TaskFailed", first.summary
    annotations.write_bytes(good)  # the fix
    options.pop("commit")
    second = run_pipeline(config, redrive=True, **options)
    capsys.readouterr()
    ok = second.status == "SUCCEEDED"
    tally.row(AREA, "run --local --redrive after a Train failure").count(second.status, not ok)
    assert second.status == "SUCCEEDED", second.summary
    name = next(p.name for p in (root / "redriven" / "training-jobs").iterdir())
    assert name.endswith("-attempt1")  # the failed job is kept, not overwritten or deleted
    assert (root / "redriven" / "training-jobs" / name / "record.json").is_file()


KILLED_RUN = r"""
import sys
from pathlib import Path
from workflow.config import load_config
from workflow.local.pipeline import run_pipeline
from workflow.local.report import Progress
root, standin, settings = Path(sys.argv[1]), Path(sys.argv[2]), __import__("json").loads(sys.argv[3])
config = load_config(Path(sys.argv[4]), environ={}, overrides=settings)
run_pipeline(config, root=root, approve="auto", commit="abc1234", container_dir=standin,
             time_scale=0.01, poll_interval=0.2, use_docker=False, stop_grace_seconds=5,
             echo=False, progress=Progress(verbose=False))
"""


def test_sigkill_of_the_runtime_in_train_is_reaped_and_redrivable(
    tmp_path: Path, tally: Tally, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL `run --local` while Train runs; the next command stops the job and redrives.

    The training process runs in its own session, so it outlives a killed runtime. The next
    command must stop it, record the job Stopped (as DescribeTrainingJob reports a stopped job:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html), and
    find the killed run for `--redrive`.
    """
    import signal
    import subprocess
    import sys

    from reliability_kit import FAST_HYPERPARAMETERS, FAST_LOCAL, REPO, STAND_IN

    from workflow.config import load_config
    from workflow.local.pipeline import run_pipeline
    from workflow.local.report import Progress

    root = tmp_path / "root"
    settings = {**FAST_LOCAL, "local.poll_seconds": 0,
                "local.hyperparameters": {**FAST_HYPERPARAMETERS, "sleep_seconds": "4"}}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'container'}"}
    runtime = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(root), str(STAND_IN), json.dumps(settings),
         str(REPO / "workflow.yaml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    records = root / "sagemaker" / "training-jobs"

    def training_pids() -> list[int]:
        for path in records.glob("*.json") if records.is_dir() else []:
            try:
                return list(json.loads(path.read_text()).get("Pids") or [])
            except ValueError:
                return []
        return []

    try:
        assert wait_for(lambda: training_pids(), 120), "Train never started"
        (job_pid,) = training_pids()
        runtime.send_signal(signal.SIGKILL)
        runtime.wait(30)
    finally:
        if runtime.poll() is None:
            runtime.kill()
    left_running = alive(job_pid)  # what a killed runtime leaves: its job in its own session

    config = load_config(REPO / "workflow.yaml", environ={}, overrides=settings)
    result = run_pipeline(config, root=root, redrive=True, approve="auto",
                          container_dir=STAND_IN, time_scale=0.01, poll_interval=0.2,
                          use_docker=False, stop_grace_seconds=5, echo=False,
                          progress=Progress(verbose=False))  # fmt: skip
    capsys.readouterr()
    archived = sorted((root / "redriven" / "training-jobs").glob("*/record.json"))
    stopped = json.loads(archived[0].read_text()) if archived else {}
    ok = not alive(job_pid) and stopped.get("TrainingJobStatus") == "Stopped"
    ok = ok and result.status == "SUCCEEDED"
    tally.row(AREA, "SIGKILL of run --local in Train, then --redrive").count(
        f"job {'left running' if left_running else 'gone'}, redrive {result.status}", not ok
    )
    assert result.status == "SUCCEEDED", (result.summary.get("cause"), result.summary)
    assert not alive(job_pid), "the killed run's training process still runs"
    assert stopped.get("TrainingJobStatus") == "Stopped", stopped
    assert "ended without stopping it" in stopped.get("FailureReason", "")
    assert result.status == "SUCCEEDED", result.summary
