"""`train`: the SageMaker training program of the Mask R-CNN container.

Usage (SageMaker runs `docker run <image> train`; without Docker, point it at any folder laid
out like `/opt/ml`):

```
SAGEMAKER_BASE_DIR=/tmp/ml python container/mask_r_cnn/train
```

Reads `input/config/hyperparameters.json` (see `hyperparams.TrainConfig` for every key; the
tuned defaults follow torchvision's detection recipe: SGD lr 0.005 momentum 0.9 weight decay
1e-4, 2 images per GPU), `input/data/training/` (required), `input/data/validation/` and
`input/data/pretrained/` (optional: one `.pth` state_dict, or the `model.tar.gz` of an earlier
job of this container, a warm start recorded as `pretrained` in `metadata.json`),
`input/config/resourceconfig.json` (hosts).

Writes `model/model.pth` (state_dict), `model/metadata.json` (everything `serve` needs),
`model/metrics.json`, `checkpoints/checkpoint-<step>.pth`; on error `output/failure` whose
first line is one actionable sentence, and a non-zero exit (2: bad input, 1: internal error,
143: stopped by SIGTERM).

Log lines for `MetricDefinitions` (stderr):

```
epoch=1 step=20 loss=0.8120 lr=0.005 loss_box_reg=... loss_classifier=... ...
epoch=1 step=40 train_loss=0.7512 epoch_seconds=12.3
validation: bbox_mAP=0.4100 segm_mAP=0.3700 bbox_AP50=... segm_AP50=... epoch=1 train_seconds=41.2
```

For CPU smoke runs: `backbone=mobilenet_v3_large_fpn fast=true min_size=128 max_size=128
max_steps=2 num_workers=0`. For a model that learns on 2 CPU cores in about 2 minutes (the local
demo, 96 px images scaled to 128): `backbone=resnet18_fpn backbone_width=32 fpn_channels=32
box_head_channels=256 mask_head_channels=64 mask_head_layers=2 anchor_sizes=auto
box_samples_per_image=64 rpn_train_proposals=150 roi_sampling_ratio=1 optimizer=adamw lr=0.001
adam_beta2=0.95 lr_schedule=wsd
warmup_steps=20 batch_size=4 min_size=128 max_size=128 fast=true max_steps=940 max_seconds=115 amp=true`.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torchvision
from torch.multiprocessing.spawn import ProcessRaisedException, start_processes
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from . import __version__
from .checkpoint import load_latest, save_checkpoint
from .contract import (
    EXIT_INTERNAL,
    EXIT_STOPPED,
    EXIT_USER,
    METADATA_FILE,
    METADATA_FORMAT,
    METRICS_FILE,
    MODEL_FILE,
)
from .data import (
    DatasetIndex,
    MaskDataset,
    check_compatible,
    coco_ground_truth,
    collate,
    load_channel,
)
from .distributed import (
    DistContext,
    barrier,
    broadcast_object,
    context_for,
    init_process_group,
    local_world_size,
    shutdown,
)
from .engine import EpochBatchSampler, LoopState, autocast_dtype, evaluate, train_one_epoch
from .env import SageMakerEnv, base_dir_from
from .errors import (
    ChannelError,
    DataError,
    HyperparameterError,
    MaskRCNNError,
    NoSpaceError,
    PretrainedError,
    StoppedError,
    TrainingError,
    UserInputError,
)
from .hyperparams import TrainConfig, parse_hyperparameters
from .logs import configure_logging
from .model import ModelSpec, build_model, find_state_dict, load_pretrained
from .recipe import build_optimizer, build_spec
from .storage import (
    release_failure_space,
    reserve_failure_space,
    save_bytes,
    save_torch,
    write_failure,
)
from .transforms import TrainAugment

logger = logging.getLogger("mask_r_cnn")
_ERROR_TYPES = (
    ChannelError,
    DataError,
    HyperparameterError,
    PretrainedError,
    UserInputError,
    StoppedError,
    TrainingError,
    NoSpaceError,
)


class _StopFlag:
    """Set by SIGTERM (SageMaker's StopTrainingJob and spot interruptions)."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        del frame
        logger.warning("received signal %d: stopping after this step", signum)
        self.raised = True


def failure_sentence(exc: BaseException) -> str:
    """Return the one-line reason for `exc` (unwrapping DataLoader worker re-raises)."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the original
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split()) or type(exc).__name__


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    save_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), path.name)


def _loader(
    dataset: MaskDataset, sampler: EpochBatchSampler, config: TrainConfig, ctx: DistContext
) -> DataLoader[Any]:
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate,
        pin_memory=ctx.device.startswith("cuda"),
    )


def _check_model_dir(env: SageMakerEnv) -> None:
    if (env.model_dir / MODEL_FILE).exists():
        raise UserInputError(
            f"{env.model_dir / MODEL_FILE} already exists from an earlier run and is never "
            "overwritten; use a fresh SAGEMAKER_BASE_DIR or move the old model away."
        )


def check_input_modes(env: SageMakerEnv) -> None:
    """Refuse Pipe-mode channels: this container reads files (File or FastFile mode).

    Raises:
        UserInputError: a channel is configured with TrainingInputMode Pipe.
    """
    for name, channel in sorted(env.input_data_config.items()):
        mode = channel.get("TrainingInputMode") if isinstance(channel, dict) else None
        if mode == "Pipe":
            raise UserInputError(
                f"channel {name!r} uses TrainingInputMode 'Pipe', but this container reads "
                "image files; set the channel's input mode to 'File' or 'FastFile'."
            )


def fit(env: SageMakerEnv, config: TrainConfig, ctx: DistContext, stop: _StopFlag) -> None:
    """Train, evaluate and (on rank 0) write `model/`; resumes from `checkpoints/`."""
    # 1. Join the job and read the data.
    check_input_modes(env)
    init_process_group(env, ctx)
    torch.manual_seed(config.seed)
    if ctx.is_master:
        _check_model_dir(env)
    train_index = load_channel(env.channel_dir("training"), "training")
    val_index = None
    if env.has_channel("validation") and ctx.is_master:
        val_index = load_channel(env.channel_dir("validation"), "validation")
        check_compatible(train_index, val_index)

    # 2. Build the model; load pretrained weights; resume from the newest checkpoint.
    pretrained = (
        find_state_dict(env.channel_dir("pretrained")) if env.has_channel("pretrained") else None
    )
    spec = broadcast_object(build_spec(config, train_index, pretrained is not None), ctx)
    model = build_model(spec)
    warm_start: dict[str, Any] | None = None
    if pretrained is not None:
        warm_start = {"file": pretrained.name, **load_pretrained(model, pretrained)}
    resume = broadcast_object(load_latest(env.checkpoint_dir) if ctx.is_master else None, ctx)
    state = LoopState()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, config)
    precision = autocast_dtype(config, ctx.device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == torch.float16)
    if config.amp and precision is None:
        logger.warning("amp=true is ignored: this CPU has no bfloat16 instructions (float32)")
    logger.info("precision=%s", "float32" if precision is None else str(precision).split(".")[-1])
    if resume is not None:
        if resume.get("spec") != spec.to_dict():
            raise UserInputError(
                f"checkpoint {resume.get('path')} was written for model {resume.get('spec')} but "
                f"this job builds {spec.to_dict()}; use the same hyperparameters and data, or an "
                "empty checkpoint location."
            )
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        state = LoopState(**resume["loop"])
        logger.info(
            "resumed: checkpoint=%s epoch=%d step=%d",
            Path(str(resume.get("path"))).name,
            state.epoch + 1,
            state.global_step,
        )
    model.to(ctx.device)
    train_model: torch.nn.Module = model
    if ctx.distributed:
        device_ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
        train_model = DistributedDataParallel(model, device_ids=device_ids)

    def save(loop: LoopState, loss: float | None = None) -> None:
        if ctx.is_master:
            checkpoint = {
                "format": METADATA_FORMAT,
                "loop": asdict(loop),
                "last_loss": loop.mean_loss if loss is None else loss,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "spec": spec.to_dict(),
            }
            save_checkpoint(
                env.checkpoint_dir, checkpoint, loop.global_step, config.keep_checkpoints
            )

    def on_step(loop: LoopState, force: bool) -> None:
        if force or (config.checkpoint_steps and loop.global_step % config.checkpoint_steps == 0):
            save(loop)

    # 3. Train epoch by epoch; each epoch ends with a checkpoint and a validation.
    dataset = MaskDataset(
        train_index, train_index.label_of, TrainAugment() if config.augment else None
    )
    val_loader = None
    if val_index is not None:
        val_set = MaskDataset(val_index, train_index.label_of)
        val_loader = DataLoader(
            val_set, batch_size=1, num_workers=config.num_workers, collate_fn=collate
        )
        ground_truth = coco_ground_truth(val_index)
    category_of = {label: cat_id for cat_id, label in train_index.label_of.items()}
    last_loss = (
        resume["last_loss"] if resume is not None and "last_loss" in resume else float("nan")
    )
    metrics: dict[str, float] = {}
    capped = (config.max_steps is not None and state.global_step >= config.max_steps) or (
        config.max_seconds is not None and state.seconds >= config.max_seconds
    )
    epochs_run = state.epoch
    per_epoch = EpochBatchSampler(
        len(dataset),
        config.batch_size,
        shuffle=False,
        seed=0,
        epoch=0,
        rank=ctx.rank,
        world_size=ctx.world_size,
    ).total
    while state.epoch < config.epochs and not capped:
        started = time.monotonic()
        sampler = EpochBatchSampler(
            len(dataset),
            config.batch_size,
            shuffle=True,
            seed=config.seed,
            epoch=state.epoch,
            rank=ctx.rank,
            world_size=ctx.world_size,
            start_batch=state.step_in_epoch,
        )
        capped = train_one_epoch(
            train_model,
            optimizer,
            _loader(dataset, sampler, config, ctx),
            state,
            config,
            ctx,
            scaler,
            precision=precision,
            on_step=on_step,
            should_stop=lambda: stop.raised,
            total_steps=config.epochs * per_epoch,
        )
        last_loss = state.mean_loss
        epochs_run = state.epoch + 1
        if ctx.is_master:
            logger.info(
                "epoch=%d step=%d train_loss=%.4f epoch_seconds=%.1f",
                epochs_run,
                state.global_step,
                last_loss,
                time.monotonic() - started,
            )
        if val_loader is not None:
            metrics = evaluate(model, val_loader, ground_truth, ctx.device, category_of)
            _log_validation(metrics, epochs_run, state.seconds)
        barrier(ctx)
        if state.step_in_epoch >= sampler.total:
            state = LoopState(
                epoch=state.epoch + 1, global_step=state.global_step, seconds=state.seconds
            )
        save(state, last_loss)

    # 4. Rank 0 writes model/: weights, metadata for `serve`, final metrics.
    if val_loader is not None and not metrics:
        metrics = evaluate(model, val_loader, ground_truth, ctx.device, category_of)
        _log_validation(metrics, epochs_run, state.seconds)
    if ctx.is_master:
        _write_model(
            env, config, spec, train_index, model, last_loss, epochs_run, state, metrics, warm_start
        )
    barrier(ctx)


def _log_validation(metrics: Mapping[str, float], epoch: int, seconds: float) -> None:
    logger.info(
        "validation: bbox_mAP=%.4f segm_mAP=%.4f bbox_AP50=%.4f segm_AP50=%.4f epoch=%d "
        "train_seconds=%.1f",
        metrics["bbox_mAP"],
        metrics["segm_mAP"],
        metrics["bbox_AP50"],
        metrics["segm_AP50"],
        epoch,
        seconds,
    )


def _write_model(
    env: SageMakerEnv,
    config: TrainConfig,
    spec: ModelSpec,
    index: DatasetIndex,
    model: torch.nn.Module,
    train_loss: float,
    epochs: int,
    state: LoopState,
    metrics: Mapping[str, float],
    pretrained: Mapping[str, Any] | None,
) -> None:
    env.model_dir.mkdir(parents=True, exist_ok=True)
    _check_model_dir(env)
    weights = {k: v.cpu() for k, v in model.state_dict().items()}
    save_torch(env.model_dir / MODEL_FILE, weights, MODEL_FILE)
    metadata = {
        "format": METADATA_FORMAT,
        "model": spec.to_dict(),
        "categories": [
            {"id": c.id, "name": c.name, "label": index.label_of[c.id]} for c in index.categories
        ],
        "score_threshold": config.score_threshold,
        "one_label_per_object": config.one_label_per_object,
        "hyperparameters": config.as_strings(),
        "source_commit": env.source_commit,
        "training_job_name": env.training_job_name,
        # The pretrained channel's weights (a warm start names the job and commit they came
        # from), or null when the job trained from scratch.
        "pretrained": dict(pretrained) if pretrained is not None else None,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "mask_r_cnn": __version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
    }
    _write_json(env.model_dir / METADATA_FILE, metadata)
    result: dict[str, Any] = {
        "train_loss": train_loss if math.isfinite(train_loss) else None,
        "epochs": epochs,
        "steps": state.global_step,
        "train_seconds": round(state.seconds, 1),
    }
    result.update(metrics)
    _write_json(env.model_dir / METRICS_FILE, result)
    logger.info(
        "model written: %s steps=%d train_loss=%.4f",
        env.model_dir / MODEL_FILE,
        state.global_step,
        train_loss,
    )


def _process(local_rank: int, env: SageMakerEnv, config: TrainConfig, per_host: int) -> None:
    """Entry point of one training process (one per GPU)."""
    ctx = context_for(env, local_rank, per_host)
    configure_logging(ctx.rank)
    stop = _StopFlag()
    signal.signal(signal.SIGTERM, stop)
    try:
        fit(env, config, ctx, stop)
    finally:
        shutdown()


def _spawn(env: SageMakerEnv, config: TrainConfig, per_host: int) -> None:
    """Run one process per GPU, forwarding SIGTERM, and re-raise a child's error here."""
    context = start_processes(  # type: ignore[no-untyped-call]  # torch leaves it untyped
        _process, args=(env, config, per_host), nprocs=per_host, join=False, start_method="spawn"
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        del frame
        for process in context.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        while not context.join():
            pass
    except ProcessRaisedException as exc:
        last = str(exc).strip().splitlines()[-1]
        name, _, message = last.partition(": ")
        error_type = {cls.__name__: cls for cls in _ERROR_TYPES}.get(name.rsplit(".", 1)[-1])
        if error_type is None:
            raise
        raise error_type(message) from exc


def run(environ: Mapping[str, str] | None = None) -> int:
    """Run training under the failure-file boundary and return the exit code.

    Args:
        environ: the environment; `os.environ` when omitted.

    Returns:
        0 on success, 2 for bad input, 143 when stopped by SIGTERM, 1 for any other error; on
        failure `output/failure` holds the reason on its first line.
    """
    environ = os.environ if environ is None else environ
    configure_logging()
    failure = base_dir_from(environ) / "output" / "failure"
    reserve_failure_space(failure)  # freed by write_failure: a full disk still gets its reason
    try:
        env = SageMakerEnv.from_environ(environ)
        config = parse_hyperparameters(env.hyperparameters)
        per_host = local_world_size(env.processes_per_host)
        logger.info(
            "train: host=%s hosts=%d processes_per_host=%d backbone=%s epochs=%d",
            env.current_host,
            len(env.hosts),
            per_host,
            config.backbone,
            config.epochs,
        )
        if per_host > 1:
            _spawn(env, config, per_host)
        else:
            _process(0, env, config, 1)
    except UserInputError as exc:
        sentence = failure_sentence(exc)
        logger.error("error: %s", sentence)
        write_failure(failure, sentence)
        return EXIT_USER
    except StoppedError as exc:
        logger.warning("%s", exc)
        write_failure(failure, failure_sentence(exc))
        return EXIT_STOPPED
    except (TrainingError, MaskRCNNError) as exc:
        sentence = failure_sentence(exc)
        logger.error("error: %s", sentence)
        write_failure(failure, sentence, traceback.format_exc())
        return EXIT_INTERNAL
    except Exception as exc:  # the boundary: every failure must reach output/failure
        sentence = (
            f"training failed with an unexpected {type(exc).__name__}: {failure_sentence(exc)}; "
            "this is a bug or an environment problem, see the traceback in the job log."
        )
        logger.exception("error: %s", sentence)
        write_failure(failure, sentence, traceback.format_exc())
        return EXIT_INTERNAL
    release_failure_space(failure)
    return 0


def main() -> None:
    """Console entry point of `train`."""
    sys.exit(run())
