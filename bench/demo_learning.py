"""Demo learning: held-out segm mAP against training seconds, demo configuration vs the previous.

Both configurations train with the container's `train` program (a subprocess, as `run --local`
runs it) on the demo's synthetic data set (`local.dataset` of workflow.yaml), with the
validation split as the held-out channel; every epoch ends with a `validation:` line giving
segm mAP and the training seconds so far, which make the learning curve.

- **demo**: `local.hyperparameters` of workflow.yaml over `training.hyperparameters`, as
  `run --local` sends them (a half-width ResNet-18 with a 32-channel FPN, narrow heads and derived anchors,
  AdamW, a warm-up-stable-decay schedule, `max_seconds` budget).
- **previous default**: the demo configuration before it (MobileNetV3 FPN with 256-channel
  heads and 32-512 px anchors, SGD lr 0.005 with a 100-step warm-up, batch 2), first as it
  shipped (2 steps), then given as many training seconds as the demo used in the same round.

Figures: the demo's final held-out segm mAP (target >= 0.35, stretch 0.5) and its training
seconds, the previous default's as shipped and on the same budget; each the median of the runs.
`demo_learning.png` beside the JSON draws the curves side by side.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    BenchSettings,
    Figure,
    Measurement,
    at_least,
    clean_env,
    median,
    python_argv,
    time_command,
)

NAME = "demo_learning"
TITLE = "Demo model learning"
TARGET_SEGM_MAP = 0.35
STRETCH_SEGM_MAP = 0.5
# `local.hyperparameters` before the CPU-fit model and the short-run recipe (workflow.yaml).
PREVIOUS_DEFAULT = {
    "epochs": "1",
    "max_steps": "2",
    "backbone": "mobilenet_v3_large_fpn",
    "batch_size": "2",
    "lr": "0.005",
    "min_size": "96",
    "max_size": "96",
    "fast": "true",
    "detections_per_image": "10",
    "num_workers": "0",
}


def demo_configuration(repo_root: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Return the demo's hyperparameters (as `run --local` merges them) and `local.dataset`."""
    from workflow.config import load_config

    config = load_config(repo_root / "workflow.yaml", environ={})
    merged = {**config.training.hyperparameters, **config.local.hyperparameters}
    # every key of local.dataset (they are `generate`'s arguments); no test split: the curve
    # is the validation split's
    sizes = {**config.local.dataset.model_dump(mode="json"), "test": 0}
    return {k: str(v) for k, v in merged.items()}, sizes


def learning_curve(log: str) -> list[dict[str, float]]:
    """Return `[{epoch, train_seconds, segm_mAP, bbox_mAP}]` from `train`'s validation lines."""
    from mask_r_cnn.metrics import validation_curve

    return validation_curve(log)


def train_once(
    repo_root: Path, data: Path, hyperparameters: dict[str, str], folder: Path, threads: int
) -> dict[str, Any]:
    """Run `train` once on `data` (train + validation splits) and return its curve and metrics."""
    base = folder / "ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (base / "input" / "data").mkdir(parents=True)
    for channel, split in (("training", "train"), ("validation", "validation")):
        (base / "input" / "data" / channel).symlink_to(data / split, target_is_directory=True)
    env = clean_env({"SAGEMAKER_BASE_DIR": str(base), "OMP_NUM_THREADS": str(threads)})
    wall, result = time_command(
        python_argv(str(repo_root / "container" / "mask_r_cnn" / "train")),
        cwd=repo_root,
        env=env,
        timeout=1800,
    )
    metrics = json.loads((base / "model" / "metrics.json").read_text(encoding="utf-8"))
    return {"wall_s": round(wall, 1), "metrics": metrics, "curve": learning_curve(result.stderr)}


def draw(path: Path, curves: dict[str, list[list[dict[str, float]]]], shipped: float) -> None:
    """Draw held-out segm mAP against training seconds, one panel per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), sharey=True)
    for axis, name in zip(axes, names, strict=True):
        for i, run in enumerate(curves[name]):
            xs = [p["train_seconds"] for p in run]
            axis.plot(xs, [p["segm_mAP"] for p in run], marker="o", label=f"segm mAP run {i + 1}")
            axis.plot(xs, [p["bbox_mAP"] for p in run], ls="--", alpha=0.6, label="bbox mAP")
        axis.axhline(TARGET_SEGM_MAP, color="grey", lw=0.8, ls=":", label="target 0.35")
        axis.set_title(name)
        axis.set_xlabel("training seconds")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("held-out mAP (validation split)")
    axes[-1].scatter([0], [shipped], color="red", zorder=3, label="as shipped (2 steps)")
    for axis in axes:
        axis.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run(settings: BenchSettings) -> Measurement:
    """Measure the demo's learning against the previous default (see the module docstring)."""
    from mask_r_cnn.synthetic import generate

    runs = settings.count(default=3, smoke=1)
    demo, sizes = demo_configuration(settings.repo_root)
    budget = demo.get("max_seconds", "-")
    # The previous default gets the training seconds the demo used (set per round below).
    previous = {**PREVIOUS_DEFAULT, "max_steps": "0", "epochs": "1000"}
    configurations = {"demo": demo, "previous default, same budget": previous}
    if settings.smoke:
        sizes.update(train=4, validation=2, size=64)
        for values in configurations.values():
            values.update(max_steps="2", max_seconds="0", epochs="1", min_size="64", max_size="64")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    with tempfile.TemporaryDirectory(prefix="bench-demo-learning-") as tmp:
        folder = Path(tmp)
        generate(folder / "data", **sizes)
        shipped = train_once(
            settings.repo_root, folder / "data", PREVIOUS_DEFAULT, folder / "shipped", 1
        )
        for i in range(runs):
            for name, hyperparameters in configurations.items():
                if name != "demo" and not settings.smoke:
                    used = results["demo"][-1]["metrics"]["train_seconds"]
                    hyperparameters["max_seconds"] = str(max(float(used), 1.0))
                results[name].append(
                    train_once(
                        settings.repo_root,
                        folder / "data",
                        dict(hyperparameters),
                        folder / f"{name.split()[0]}-{i}",
                        settings.threads,
                    )
                )
    final = {name: median([r["metrics"]["segm_mAP"] for r in rs]) for name, rs in results.items()}
    seconds = {
        name: median([r["metrics"]["train_seconds"] for r in rs]) for name, rs in results.items()
    }
    shipped_map = float(shipped["metrics"]["segm_mAP"])
    png = settings.out_dir / f"{NAME}.png"
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    draw(png, {n: [r["curve"] for r in rs] for n, rs in results.items()}, shipped_map)
    demo_map = final["demo"]
    figures = [
        Figure(
            figure="demo: held-out segm mAP after its training budget",
            target=f">= {TARGET_SEGM_MAP} (stretch {STRETCH_SEGM_MAP})",
            result=round(demo_map, 3),
            unit="mAP",
            ratio=round(demo_map / TARGET_SEGM_MAP, 3),
            # 2 smoke steps learn nothing: the smoke run checks the plumbing, not the target.
            verdict="not measured" if settings.smoke else at_least(demo_map, TARGET_SEGM_MAP),
            note=f"median of {runs}; {seconds['demo']:.0f} s of training "
            f"(max_steps {demo.get('max_steps', '-')}, max_seconds {budget}); curve in {png.name}",
        ),
        Figure(
            figure="previous default on the same budget: held-out segm mAP",
            target="",
            result=round(final["previous default, same budget"], 3),
            unit="mAP",
            ratio=round(demo_map / max(final["previous default, same budget"], 1e-3), 2),
            note=f"median of {runs}; {seconds['previous default, same budget']:.0f} s of "
            "training; ratio = demo / previous",
        ),
        Figure(
            figure="previous default as shipped (2 steps): held-out segm mAP",
            target="",
            result=round(shipped_map, 3),
            unit="mAP",
            note=f"{shipped['metrics']['steps']} steps, {shipped['metrics']['train_seconds']} s",
        ),
    ]
    return Measurement(
        figures=figures,
        settings={
            "runs": runs,
            "threads": settings.threads,
            "dataset": sizes,
            "hyperparameters": configurations,
            "shipped": PREVIOUS_DEFAULT,
        },
        details={"runs": results, "shipped": shipped, "png": png.name},
    )
