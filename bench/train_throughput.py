"""Training throughput: the container's training loop against torchvision's reference loop.

Both loops train the same network in one process, side by side:

- **container**: `mask_r_cnn.engine.train_one_epoch` exactly as `train` calls it (per-step lr
  from the global step, loss check, `zero_grad(set_to_none=True)`, grad clipping, the AMP
  scaler, progress logging), on a `DataLoader` built as `train` builds it;
- **baseline**: `reference_train_one_epoch` below, written the way torchvision's
  `references/detection/engine.py` `train_one_epoch` trains (a `MetricLogger` with
  `log_every`, `LinearLR` warm-up in epoch 0, `reduce_dict` of the losses, `.item()`,
  `zero_grad()`, `backward()`, `step()`, no clipping).

Same model (`mask_r_cnn.model.build_model` of the spec `train` derives from the demo
hyperparameters: `local.hyperparameters` of workflow.yaml over the container's defaults), same
initial weights, backbone, image size, batch size, data (a synthetic set of the demo's image
size; both loops get the same batches in the same order), DataLoader workers and torch thread
count. After one warm-up epoch each, the loops alternate epoch by epoch (the order flips every
round), each measured epoch starting again from the initial weights (see `Pair.reset`); each figure is the median of the rounds, and the ratio is the median of the per-round
ratios container / baseline.

Target: ratio at least 1.0 on CPU. With a GPU the pair is measured again with AMP (container
`amp=true`, baseline with a `GradScaler`); without one that row says "not measured: no GPU lent".
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BenchSettings,
    Figure,
    Measurement,
    at_least,
    median,
    summary,
)

NAME = "train_throughput"
TITLE = "Training throughput"
TARGET_RATIO = 1.0
PRINT_FREQ = 20  # torchvision's --print-freq default; the container's log_interval default too

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# the baseline: torchvision's references/detection training loop
# ---------------------------------------------------------------------------------------------


class SmoothedValue:
    """A window of recent values plus the running total (references/detection/utils.py)."""

    def __init__(self, window_size: int = 20) -> None:
        """Keep the last `window_size` values."""
        self.window: deque[float] = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> None:
        """Add a value."""
        self.window.append(value)
        self.count += n
        self.total += value * n

    @property
    def median(self) -> float:
        """The median of the window."""
        return median(list(self.window)) if self.window else float("nan")

    @property
    def global_avg(self) -> float:
        """The average of every value so far."""
        return self.total / self.count if self.count else float("nan")

    def __str__(self) -> str:
        """`median (global average)`, as the reference prints it."""
        return f"{self.median:.4f} ({self.global_avg:.4f})"


class MetricLogger:
    """Named smoothed values and the `log_every` progress iterator of the reference."""

    def __init__(self) -> None:
        """Start with no meters."""
        self.meters: dict[str, SmoothedValue] = defaultdict(SmoothedValue)

    def update(self, **values: Any) -> None:
        """Add one value per name (tensors are read with `.item()`)."""
        for name, value in values.items():
            if hasattr(value, "item"):
                value = value.item()
            self.meters[name].update(float(value))

    def log_every(self, iterable: Iterable[Any], print_freq: int, header: str) -> Iterator[Any]:
        """Yield the items, timing data loading and iterations; log every `print_freq`."""
        items = list(iterable) if not hasattr(iterable, "__len__") else iterable
        total = len(items)  # type: ignore[arg-type]
        iter_time, data_time = SmoothedValue(), SmoothedValue()
        start = end = time.time()
        for i, item in enumerate(items):
            data_time.update(time.time() - end)
            yield item
            iter_time.update(time.time() - end)
            if i % print_freq == 0 or i == total - 1:
                eta = dt.timedelta(seconds=int(iter_time.global_avg * (total - i)))
                meters = "  ".join(f"{name}: {meter}" for name, meter in self.meters.items())
                logger.info(
                    "%s [%d/%d]  eta: %s  %s  time: %s  data: %s",
                    header,
                    i,
                    total,
                    eta,
                    meters,
                    iter_time,
                    data_time,
                )
            end = time.time()
        logger.info("%s Total time: %s", header, dt.timedelta(seconds=int(time.time() - start)))


def reference_train_one_epoch(
    model: Any,
    optimizer: Any,
    data_loader: Any,
    device: str,
    epoch: int,
    print_freq: int,
    scaler: Any = None,
) -> MetricLogger:
    """Train one epoch the way torchvision's detection reference does.

    The single-process case of references/detection/engine.py: `reduce_dict` is the identity
    there, so the reduced losses are the losses.
    """
    import torch

    model.train()
    metric_logger = MetricLogger()
    header = f"Epoch: [{epoch}]"
    lr_scheduler = None
    if epoch == 0:
        warmup_iters = min(1000, len(data_loader) - 1)
        lr_scheduler = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0 / 1000, total_iters=max(warmup_iters, 1)
        )
    for images, targets in metric_logger.log_every(data_loader, print_freq, header):
        images = [image.to(device) for image in images]
        targets = [
            {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
            for t in targets
        ]
        with torch.autocast(device_type="cuda", enabled=scaler is not None):
            loss_dict = model(images, targets)
            losses = sum(loss for loss in loss_dict.values())
        loss_dict_reduced = dict(loss_dict)  # utils.reduce_dict with one process
        losses_reduced = sum(loss for loss in loss_dict_reduced.values())
        loss_value = losses_reduced.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"Loss is {loss_value}, stopping training: {loss_dict_reduced}")
        optimizer.zero_grad()
        if scaler is not None:
            scaler.scale(losses).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            losses.backward()
            optimizer.step()
        if lr_scheduler is not None:
            lr_scheduler.step()
        metric_logger.update(loss=losses_reduced, **loss_dict_reduced)
        metric_logger.update(lr=optimizer.param_groups[0]["lr"])
    return metric_logger


# ---------------------------------------------------------------------------------------------
# the shared set-up
# ---------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything both loops share."""

    config: Any  # mask_r_cnn.hyperparams.TrainConfig
    spec: Any  # mask_r_cnn.model.ModelSpec
    dataset: Any  # mask_r_cnn.data.MaskDataset
    device: str
    images_per_epoch: int
    hyperparameters: dict[str, str]


def demo_hyperparameters(repo_root: Path) -> tuple[dict[str, str], int, int]:
    """Return the demo's hyperparameters, image size and training images (workflow.yaml).

    The hyperparameters are those `run --local` sends: `local.hyperparameters` merged over
    `training.hyperparameters` (as `workflow.naming.execution_input` merges them).
    """
    from workflow.config import load_config

    config = load_config(repo_root / "workflow.yaml", environ={})
    dataset = config.local.dataset
    merged = {**config.training.hyperparameters, **config.local.hyperparameters}
    return {k: str(v) for k, v in merged.items()}, int(dataset.size), int(dataset.train)


def prepare(settings: BenchSettings, folder: Path, *, amp: bool = False) -> Setup:
    """Write the synthetic data, parse the hyperparameters and build the data set."""
    import torch
    from mask_r_cnn.data import MaskDataset, load_channel
    from mask_r_cnn.hyperparams import parse_hyperparameters
    from mask_r_cnn.synthetic import generate
    from mask_r_cnn.train import build_spec
    from mask_r_cnn.transforms import TrainAugment

    hyperparameters, size, images = demo_hyperparameters(settings.repo_root)
    if settings.smoke:  # one small step per loop, no worker processes
        size, images = 64, 2
        hyperparameters.update(min_size="64", max_size="64", fast="true", num_workers="0")
    hyperparameters["amp"] = "true" if amp else "false"
    config = parse_hyperparameters(hyperparameters)
    if not (folder / "train" / "annotations.json").is_file():
        generate(folder, train=images, validation=0, test=0, size=size, seed=0)
    index = load_channel(folder / "train", "training")
    dataset = MaskDataset(index, index.label_of, TrainAugment() if config.augment else None)
    return Setup(
        config=config,
        spec=build_spec(config, index, pretrained=False),
        dataset=dataset,
        device="cuda" if torch.cuda.is_available() else "cpu",
        images_per_epoch=len(dataset),
        hyperparameters={k: str(v) for k, v in hyperparameters.items()},
    )


class Pair:
    """The two loops with their own model copy and optimizer, from the same initial weights."""

    def __init__(self, setup: Setup) -> None:
        """Build one model, copy it, and give each copy the container's optimizer settings."""
        import torch
        from mask_r_cnn.distributed import DistContext
        from mask_r_cnn.model import build_model

        self.setup = setup
        config = setup.config
        torch.manual_seed(config.seed)
        model = build_model(setup.spec).to(setup.device)
        self.initial = copy.deepcopy(model.state_dict())
        self.models = {"container": model, "baseline": copy.deepcopy(model)}
        self.ctx = DistContext(device=setup.device)
        self.reset("container")
        self.reset("baseline")

    def reset(self, name: str) -> None:
        """Put one loop back at the start: initial weights, a new optimizer, epoch 0.

        Every measured epoch starts from the same weights with the same batches: a model that
        has learnt more matches more proposals to objects, which makes its mask head do more
        work, so letting the two models drift apart (their warm-up schedules differ) would
        compare the models, not the loops.
        """
        import torch
        from mask_r_cnn.engine import LoopState

        config = self.setup.config
        model = self.models[name]
        model.load_state_dict(self.initial)
        optimizer = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad],
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        use_amp = config.amp and self.setup.device.startswith("cuda")
        if name == "container":
            self.optimizers = {**getattr(self, "optimizers", {}), name: optimizer}
            self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
            self.state = LoopState()
        else:
            self.optimizers = {**getattr(self, "optimizers", {}), name: optimizer}
            self.baseline_scaler = torch.amp.GradScaler("cuda") if use_amp else None
            self.baseline_epoch = 0

    def _batches(self, epoch: int) -> Any:
        from mask_r_cnn.engine import EpochBatchSampler

        return EpochBatchSampler(
            len(self.setup.dataset),
            self.setup.config.batch_size,
            shuffle=True,
            seed=self.setup.config.seed,
            epoch=epoch,
        )

    def _loader(self, batches: Any) -> Any:
        # The DataLoader `train` builds (mask_r_cnn.train._loader); the baseline gets the same.
        from mask_r_cnn.data import collate
        from torch.utils.data import DataLoader

        return DataLoader(
            self.setup.dataset,
            batch_sampler=batches,
            num_workers=self.setup.config.num_workers,
            collate_fn=collate,
            pin_memory=self.setup.device.startswith("cuda"),
        )

    def _sync(self) -> None:
        import torch

        if self.setup.device.startswith("cuda"):
            torch.cuda.synchronize()

    def container_epoch(self) -> float:
        """Train one epoch with the container's loop; return the seconds it took."""
        from mask_r_cnn.engine import LoopState, autocast_dtype, train_one_epoch

        epoch = self.state.epoch
        loader = self._loader(self._batches(epoch))
        self._sync()
        started = time.perf_counter()
        train_one_epoch(
            self.models["container"],
            self.optimizers["container"],
            loader,
            self.state,
            self.setup.config,
            self.ctx,
            self.scaler,
            precision=autocast_dtype(self.setup.config, self.ctx.device),
            on_step=lambda state, force: None,
            should_stop=lambda: False,
        )
        self._sync()
        elapsed = time.perf_counter() - started
        self.state = LoopState(epoch=epoch + 1, global_step=self.state.global_step)
        return elapsed

    def baseline_epoch_run(self) -> float:
        """Train one epoch with the reference loop on the same batches; return the seconds."""
        epoch = self.baseline_epoch
        loader = self._loader(list(self._batches(epoch)))
        self._sync()
        started = time.perf_counter()
        reference_train_one_epoch(
            self.models["baseline"],
            self.optimizers["baseline"],
            loader,
            self.setup.device,
            epoch,
            PRINT_FREQ,
            scaler=self.baseline_scaler,
        )
        self._sync()
        self.baseline_epoch += 1
        return time.perf_counter() - started

    def clip_ms(self, repeats: int = 10) -> float:
        """Time the container's gradient clipping alone (ms per call), with the current grads."""
        import torch

        parameters = [p for p in self.models["container"].parameters() if p.grad is not None]
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(parameters, self.setup.config.grad_clip)
            self._sync()
            times.append((time.perf_counter() - started) * 1000)
        return median(times)


def measure_pair(setup: Setup, rounds: int, warm_up: bool) -> dict[str, Any]:
    """Warm up both loops, then alternate them for `rounds` epochs each."""
    pair = Pair(setup)
    if warm_up:
        pair.container_epoch()
        pair.baseline_epoch_run()
    seconds: dict[str, list[float]] = {"container": [], "baseline": []}
    for r in range(rounds):
        order = ("container", "baseline") if r % 2 == 0 else ("baseline", "container")
        for name in order:
            pair.reset(name)
            run = pair.container_epoch if name == "container" else pair.baseline_epoch_run
            seconds[name].append(run())
    images = setup.images_per_epoch
    ips = {name: [images / s for s in values] for name, values in seconds.items()}
    ratios = [c / b for c, b in zip(ips["container"], ips["baseline"], strict=True)]
    step_ms = median(seconds["container"]) * 1000 / max(pair.state.global_step, 1)
    # Rounds alternate which loop goes first; an order effect shows as a difference here.
    first = {
        "container_first": [r for i, r in enumerate(ratios) if i % 2 == 0],
        "baseline_first": [r for i, r in enumerate(ratios) if i % 2 == 1],
    }
    return {
        "images_per_s": {name: summary(values) for name, values in ips.items()},
        "ratio": summary(ratios),
        "ratio_by_order": {k: round(median(v), 3) for k, v in first.items() if v},
        "clip_ms": round(pair.clip_ms(), 2) if setup.config.grad_clip > 0 else 0.0,
        "container_step_ms_approx": round(step_ms, 1),
    }


def run(settings: BenchSettings) -> Measurement:
    """Measure both loops (see the module docstring)."""
    import torch

    torch.set_num_threads(settings.threads)
    rounds = settings.count(default=5, smoke=1)
    details: dict[str, Any] = {"findings": []}
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        setup = prepare(settings, Path(tmp))
        fp32 = measure_pair(setup, rounds, warm_up=not settings.smoke)
        details["fp32"] = fp32
        ratio = fp32["ratio"]["median"]
        verdict = at_least(ratio, TARGET_RATIO)
        container_ips = fp32["images_per_s"]["container"]["median"]
        baseline_ips = fp32["images_per_s"]["baseline"]["median"]
        figures.append(
            Figure(
                figure=f"training images/s, container loop ({setup.device})",
                target=f"ratio >= {TARGET_RATIO:g}",
                result=round(container_ips, 3),
                unit="images/s",
                ratio=round(ratio, 3),
                verdict=verdict,
                note=(
                    f"baseline (torchvision reference loop) {baseline_ips:.3f} images/s; ratio "
                    f"= median of {rounds} paired rounds (range {fp32['ratio']['min']:.2f} to "
                    f"{fp32['ratio']['max']:.2f})"
                ),
            )
        )
        by_order = fp32["ratio_by_order"]
        if len(by_order) == 2:
            details["findings"].append(
                f"paired ratios range {fp32['ratio']['min']:.2f} to {fp32['ratio']['max']:.2f} "
                f"(load from other processes); median ratio {by_order['container_first']:.2f} "
                f"when the container loop ran first in the round, "
                f"{by_order['baseline_first']:.2f} when the baseline did"
                + (
                    f": the loop that runs "
                    f"{'second' if by_order['container_first'] < by_order['baseline_first'] else 'first'}"
                    " in a round tends to be faster, so the order explains part of the spread."
                    if abs(by_order["container_first"] - by_order["baseline_first"]) > 0.2
                    else "."
                )
            )
        if verdict == "missed":
            details["findings"].append(
                f"container/baseline = {ratio:.3f}: the container's loop does per step what the "
                f"reference does not: gradient clipping (clip_grad_norm_ over every parameter, "
                f"{fp32['clip_ms']} ms per call, about "
                f"{fp32['clip_ms'] / max(fp32['container_step_ms_approx'], 1e-9):.1%} of a step), "
                "one float() per loss term for the log and the non-finite check; the rest of "
                "the gap is within the round-to-round spread "
                f"(ratios {fp32['ratio']['min']:.3f} to {fp32['ratio']['max']:.3f})."
            )
        if setup.device.startswith("cuda"):
            amp_setup = prepare(settings, Path(tmp), amp=True)
            amp = measure_pair(amp_setup, rounds, warm_up=not settings.smoke)
            details["amp"] = amp
            figures.append(
                Figure(
                    figure="training images/s with AMP, container loop (cuda)",
                    target=f"ratio >= {TARGET_RATIO:g}",
                    result=round(amp["images_per_s"]["container"]["median"], 3),
                    unit="images/s",
                    ratio=round(amp["ratio"]["median"], 3),
                    verdict=at_least(amp["ratio"]["median"], TARGET_RATIO),
                    note=(
                        f"baseline with GradScaler "
                        f"{amp['images_per_s']['baseline']['median']:.3f} images/s"
                    ),
                )
            )
        else:
            figures.append(
                Figure(
                    figure="training images/s with AMP",
                    target=f"ratio >= {TARGET_RATIO:g}",
                    result=None,
                    unit="images/s",
                    verdict="not measured",
                    note=(
                        "not measured: no GPU lent (this pair is float16 AMP with a GradScaler; "
                        "the demo's bfloat16 on CPU is in demo_learning)"
                    ),
                )
            )
    return Measurement(
        figures=figures,
        settings={
            "rounds": rounds,
            "warmup_epochs": 0 if settings.smoke else 1,
            "threads": torch.get_num_threads(),
            "device": setup.device,
            "images_per_epoch": setup.images_per_epoch,
            "batch_size": setup.config.batch_size,
            "num_workers": setup.config.num_workers,
            "model": setup.spec.to_dict(),
            "hyperparameters": setup.hyperparameters,
            "print_freq": PRINT_FREQ,
        },
        details=details,
    )
