"""The local loop: wall time of `python -m workflow run --local`, commit to serving endpoint.

Each run is a fresh subprocess with a fresh local root (`--set local.root=<tmp>`), so it pays
what a first `make run` on a clone pays: the synthetic data set, the image snapshot, a real
training job (the demo model, under two minutes), the batch transform, the metrics, the gate,
the approval, a real local endpoint and the prediction of a held-out image. The default demo
configuration is used as it is (local runs gate on `local.gate_threshold`, carried in the
execution input). The time per state comes from the history the run saves
(`<root>/runs/<execution>/history.json`): entered to exited, summed over re-entries (poll loops).
Each run also records what its training job reached (steps and seconds, from the job's final
metrics) and a digest of the weights it deployed: runs whose training keeps ahead of its
`max_seconds` budget follow the same step schedule and deploy the same weights, bit for bit.

Target: under 150 s on 2 cores (stretch 90 s), with a model that clears the default gate (its
held-out mAP is measured by `demo_learning`). The published cloud figures for the start-up
steps on AWS are listed beside ours with their sources (`REFERENCES`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    BenchSettings,
    Figure,
    Measurement,
    at_least,
    at_most,
    clean_env,
    median,
    python_argv,
    summary,
)
from bench.profiling import (
    describe_profile,
    import_share,
    process_shares,
    profile_command,
    share_of,
)
from workflow.history import state_visits, timestamp_seconds
from workflow.local.report import metrics_of
from workflow.local.store import LocalStore, StoreError

NAME = "local_loop"
TITLE = "Commit to serving endpoint, locally"
TARGET_S = 150.0  # issue 14: a model that learns (stretch 90 s), no longer 2 steps
TARGET_SEGM_MAP = 0.35  # issue 14: what the deployed demo model scores on held-out images
RUN_TIMEOUT_S = 1800
OVERRIDES: tuple[str, ...] = ()
SMOKE_OVERRIDES = (
    "local.dataset.train=2",
    "local.dataset.validation=1",
    "local.dataset.test=3",  # the first test images of seed 0 at 64 px hold no object
    "local.dataset.size=64",
    "local.hyperparameters.min_size=64",
    "local.hyperparameters.max_size=64",
    "local.hyperparameters.fast=true",
    "local.hyperparameters.num_workers=0",
    "local.hyperparameters.epochs=1",
    "local.hyperparameters.max_steps=2",
    "local.gate_threshold=0",  # 2 steps learn nothing; the smoke run checks the plumbing
)
# Published figures for scale: (what, value, seconds for the ratio, source).
REFERENCES: tuple[dict[str, Any], ...] = (
    {
        "what": "SageMaker training job: start to the training code running (scikit-learn image)",
        "value": "2 min 41 s",
        "seconds": 161,
        "source": "https://github.com/aws/amazon-sagemaker-examples/issues/1740 (job log, "
        "07:37:57 Starting -> 07:40:38 user script)",
    },
    {
        "what": "SageMaker training job: start to the training code running (MXNet image)",
        "value": "3 min 26 s",
        "seconds": 206,
        "source": "https://github.com/awslabs/predictive-maintenance-using-machine-learning/"
        "issues/6 (job log, 20:21:37 -> 20:25:03)",
    },
    {
        "what": "SageMaker training job: start to the training code running (large NVIDIA image)",
        "value": "3 min 56 s",
        "seconds": 236,
        "source": "https://github.com/NVIDIA-Merlin/Transformers4Rec/issues/794 (job log, "
        "22:15:03 -> 22:18:59, 2 min 51 s of it downloading the image)",
    },
    {
        "what": "SageMaker endpoint creation (Estimator.deploy, ml.m4.xlarge)",
        "value": "about 8.5 min",
        "seconds": 510,
        "source": "https://github.com/aws/sagemaker-python-sdk/issues/1006",
    },
    {
        "what": "SageMaker endpoint creation (Terraform waiter, 10 min timeout exceeded)",
        "value": "more than 10 min",
        "seconds": 600,
        "source": "https://github.com/hashicorp/terraform-provider-aws/pull/39090",
    },
    {
        "what": "SageMaker endpoint creation (console note)",
        "value": "20-25 min",
        "seconds": 1200,
        "source": "https://github.com/aws/amazon-sagemaker-feedback/issues/189",
    },
)


def state_times(history: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Return per state name `{"seconds": total time inside it, "entries": times entered}`.

    A state's time runs from its `...StateEntered` event to the next `...StateExited` event of
    the same name (`workflow.history.state_visits`); a state entered again (a poll loop) adds up.
    """
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"seconds": 0.0, "entries": 0})
    for visit in state_visits(history):
        totals[visit.name]["entries"] += 1
        totals[visit.name]["seconds"] += visit.seconds or 0.0
    return {name: dict(values) for name, values in totals.items()}


def execution_seconds(history: Sequence[Mapping[str, Any]]) -> float:
    """Seconds from the first to the last event of a history."""
    first, last = history[0]["timestamp"], history[-1]["timestamp"]
    return timestamp_seconds(last) - timestamp_seconds(first)


def training_metrics(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The final metrics of the run's training job (its `FinalMetricDataList`), by name."""
    metrics: dict[str, Any] = {}
    for event in history:
        details = event.get("taskSucceededEventDetails") or {}
        if str(details.get("resource", "")).startswith("createTrainingJob"):
            metrics = metrics_of(json.loads(details.get("output") or "{}"))
    return metrics


def weights_digest(root: Path, artifact: str) -> str:
    """`sha256:` and the first 12 hex digits of the SHA-256 of `model.pth` in the run's
    `model.tar.gz` (the prefix also keeps secret scanners from reading a bare hex string as a key).

    Raises:
        BenchError: the artifact is not in the run's local store or holds no `model.pth`.
    """
    try:
        with tarfile.open(LocalStore(root).path(artifact)) as tar:
            member = tar.extractfile("model.pth")
            if member is None:
                raise KeyError("model.pth")
            return "sha256:" + hashlib.sha256(member.read()).hexdigest()[:12]
    except (OSError, StoreError, tarfile.TarError, KeyError) as exc:
        raise BenchError(
            f"the run's model artifact {artifact} cannot be read ({exc}); run "
            "'python -m workflow run --local' by hand"
        ) from exc


def training_finding(trainings: Sequence[Mapping[str, Any]]) -> str:
    """One sentence: each run's training steps and seconds, and which runs share weights.

    The demo's schedule follows the step count while the run keeps ahead of its `max_seconds`
    budget, and then the same commit trains the same weights, bit for bit; a run the budget
    overtakes decays and stops by the clock, so its weights differ.
    """
    digests = [t["weights"] for t in trainings]
    per_run = ", ".join(f"{t['steps']:.0f} steps in {t['train_seconds']:.1f} s" for t in trainings)
    distinct = len(set(digests))
    if distinct == 1:
        shared = f"the same weights {digests[0]} in all {len(digests)} runs"
    elif distinct == len(digests):
        shared = f"different weights in each of the {len(digests)} runs"
    else:
        common = max(dict.fromkeys(digests), key=digests.count)  # ties: the earliest run's
        shared = (
            f"weights {common} in {digests.count(common)} of {len(digests)} runs "
            f"({distinct} distinct)"
        )
    return f"training: {per_run}; {shared}."


def cli_has_run(repo_root: Path) -> bool:
    """Whether `python -m workflow --help` lists the `run` command."""
    result = subprocess.run(
        python_argv("-m", "workflow", "--help"),
        cwd=repo_root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return any(line.split()[:1] == ["run"] for line in result.stdout.splitlines())


def command(repo_root: Path, root: Path, overrides: Iterable[str], registered: bool) -> list[str]:
    """The argv of one local run."""
    args = ["run", "--local", "--set", f"local.root={root}"]
    for item in overrides:
        args += ["--set", item]
    if registered:
        return python_argv("-m", "workflow", *args)
    # The CLI does not list workflow.commands.run yet: call the same main() with it registered.
    shim = (
        "import sys, workflow.cli as c; "
        "c.COMMAND_MODULES = tuple(c.COMMAND_MODULES) + ('workflow.commands.run',); "
        "sys.exit(c.main(sys.argv[1:]))"
    )
    return python_argv("-c", shim, *args)


def run_once(argv: list[str], repo_root: Path, root: Path) -> dict[str, Any]:
    """Run the local loop once in local root `root`; return its wall time, status, per-state
    times, prediction scores and what its training reached.

    Raises:
        BenchError: the run failed, or its summary or history cannot be read.
    """
    started = time.perf_counter()
    try:
        result = subprocess.run(
            argv,
            cwd=repo_root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"'python -m workflow run --local' ran past {RUN_TIMEOUT_S} s; run it by hand"
        ) from exc
    wall = time.perf_counter() - started
    try:
        summary_doc = json.loads(result.stdout)
    except ValueError:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise BenchError(
            f"'python -m workflow run --local' exited with code {result.returncode} without a "
            f"summary ({tail}); run it by hand"
        ) from None
    if summary_doc.get("status") != "SUCCEEDED":
        raise BenchError(
            f"the local run ended {summary_doc.get('status')} in state "
            f"{summary_doc.get('failed_state')} ({summary_doc.get('error')}: "
            f"{summary_doc.get('cause')}); run 'python -m workflow run --local' by hand"
        )
    try:
        history = json.loads(Path(summary_doc["history"]).read_text(encoding="utf-8"))
    except (KeyError, OSError, ValueError) as exc:
        raise BenchError(
            f"the local run's history cannot be read ({exc}); run "
            "'python -m workflow run --local' by hand"
        ) from exc
    metrics = training_metrics(history)
    return {
        "wall_s": wall,
        "execution_s": execution_seconds(history),
        "states": state_times(history),
        "prediction_detections": summary_doc.get("prediction_detections"),
        "has_prediction_png": bool(summary_doc.get("prediction_png")),
        # How many shapes of the held-out picture got their right label (the picture's caption).
        "prediction_shapes": summary_doc.get("prediction_shapes"),
        # The gate's metric: the deployed model on the held-out test split.
        "segm_mAP": float((summary_doc.get("metrics") or {}).get("segm_mAP", "nan")),
        "training": {
            "steps": metrics.get("steps", float("nan")),
            "train_seconds": metrics.get("train_seconds", float("nan")),
            "weights": weights_digest(root, summary_doc["model_artifact"])
            if summary_doc.get("model_artifact")
            else None,
        },
    }


def picture_figure(shapes: list[dict[str, int] | None]) -> Figure:
    """The runs whose prediction picture labels every shape of the held-out image right."""
    counts = [s or {} for s in shapes]
    perfect = sum(1 for c in counts if c.get("shapes") and c.get("right") == c.get("shapes"))
    per_run = ", ".join(f"{c.get('right', '-')}/{c.get('shapes', '-')}" for c in counts)
    return Figure(
        figure="prediction picture: runs labelling every shape of the held-out image right",
        target=f"{len(counts)} of {len(counts)}",
        result=perfect,
        unit="runs",
        ratio=round(perfect / max(len(counts), 1), 3),
        verdict="met" if perfect == len(counts) else "missed",
        note=f"shapes labelled right per run (the summary's prediction line): {per_run}",
    )


def profile_summary(argv: list[str], repo_root: Path) -> str:
    """Profile one local run with its child processes; say where the CPU time goes."""
    stacks = profile_command(
        argv, cwd=repo_root, env=clean_env(), rate=50, timeout=RUN_TIMEOUT_S, subprocesses=True
    )
    if not stacks:
        return "no profile (py-spy is not installed or could not attach)."
    shares = ", ".join(
        f"{name} {share:.0%}" for name, share in list(process_shares(stacks).items())[:5]
    )
    parts = ", ".join(
        f"{label} {share_of(stacks, fragment):.0%}"
        for label, fragment in (
            ("train_one_epoch", "train_one_epoch (mask_r_cnn/engine.py"),
            ("validation (engine.evaluate)", "evaluate (mask_r_cnn/engine.py"),
            ("checkpoints", "save_checkpoint (mask_r_cnn/checkpoint.py"),
            ("model.tar.gz (gzip)", "(gzip.py"),
            ("Predictor.predict", "Predictor.predict (mask_r_cnn/predictor.py"),
        )
    )
    return (
        f"CPU samples by process: {shares}; {import_share(stacks):.0%} of all samples are "
        f"module imports (each job, transform and endpoint starts a new Python with torch); "
        f"by phase: {parts}. " + describe_profile(stacks)
    )


def run(settings: BenchSettings) -> Measurement:
    """Run the local loop N times (see the module docstring)."""
    runs = settings.count(default=3, smoke=1)
    overrides = list(OVERRIDES) + (list(SMOKE_OVERRIDES) if settings.smoke else [])
    registered = cli_has_run(settings.repo_root)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-local-loop-") as tmp:
        for i in range(runs):
            root = Path(tmp) / f"root-{i}"
            argv = command(settings.repo_root, root, overrides, registered)
            results.append(run_once(argv, settings.repo_root, root))
            print(f"local_loop: run {i + 1}/{runs}: {results[-1]['wall_s']:.1f} s", file=sys.stderr)
    walls = [r["wall_s"] for r in results]
    wall = median(walls)
    outside = median([r["wall_s"] - r["execution_s"] for r in results])
    names = list(results[0]["states"])
    per_state = {
        name: summary([r["states"].get(name, {}).get("seconds", 0.0) for r in results], 2)
        for name in names
    }
    slowest = sorted(per_state.items(), key=lambda item: -item[1]["median"])[:5]
    verdict = at_most(wall, TARGET_S)
    findings = [
        "slowest states (median s): "
        + ", ".join(f"{name} {stats['median']:.1f}" for name, stats in slowest)
        + f"; outside the state machine (start-up, data set, summary, prediction): {outside:.1f} s.",
        training_finding([r["training"] for r in results]),
    ]
    if verdict == "missed" and settings.profile and not settings.smoke:
        with tempfile.TemporaryDirectory(prefix="bench-local-loop-profile-") as tmp:
            argv = command(settings.repo_root, Path(tmp) / "root", overrides, registered)
            findings.append(
                f"{wall:.0f} s is over the {TARGET_S:.0f} s target; one more run under py-spy "
                f"(all processes): {profile_summary(argv, settings.repo_root)}"
            )
    segm = median([r["segm_mAP"] for r in results])
    training_cloud = REFERENCES[0]["seconds"]
    endpoint_cloud = REFERENCES[3]["seconds"]
    figures = [
        Figure(
            figure="`python -m workflow run --local` wall time, commit to endpoint + prediction",
            target=f"< {TARGET_S:.0f} s",
            result=round(wall, 1),
            unit="s",
            ratio=round(wall / TARGET_S, 3),
            verdict=verdict,
            note=f"median of {runs} cold runs (fresh local root each), default demo configuration",
        ),
        Figure(
            figure="cloud figures / local loop",
            target="",
            result=round((training_cloud + endpoint_cloud) / wall, 1),
            unit="x",
            ratio=round((training_cloud + endpoint_cloud) / wall, 1),
            verdict="info",
            note=(
                "published training start-up (2 min 41 s) + endpoint creation (8.5 min), "
                "before any training or serving work, divided by our whole loop"
            ),
        ),
    ]
    if not settings.smoke:  # the smoke run's 2 steps learn nothing: no mAP to report
        figures.insert(1, picture_figure([r["prediction_shapes"] for r in results]))
        figures.insert(
            1,
            Figure(
                figure="held-out segm mAP of the model the run deployed (what the gate read)",
                target=f">= {TARGET_SEGM_MAP} (stretch 0.5)",
                result=round(segm, 3),
                unit="mAP",
                ratio=round(segm / TARGET_SEGM_MAP, 3),
                verdict=at_least(segm, TARGET_SEGM_MAP),
                note=f"median of {runs}; the 32-image test split at the serving threshold",
            ),
        )
    return Measurement(
        figures=figures,
        settings={
            "runs": runs,
            "overrides": overrides,
            "command": " ".join(command(Path("."), Path("<tmp>"), overrides, registered)[1:]),
            "cli_registers_run": registered,
        },
        details={
            "wall_s": summary(walls, 2),
            "execution_s": summary([r["execution_s"] for r in results], 2),
            "outside_execution_s": round(outside, 2),
            "states_s": per_state,
            "prediction_detections": [r["prediction_detections"] for r in results],
            "prediction_shapes": [r["prediction_shapes"] for r in results],
            "segm_mAP": [r["segm_mAP"] for r in results],
            "training": [r["training"] for r in results],
            "references": [
                {"what": r["what"], "value": r["value"], "source": r["source"]} for r in REFERENCES
            ],
            "findings": findings,
        },
    )
