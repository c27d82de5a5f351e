"""Strict hyperparameters: `TrainConfig` parsed from `hyperparameters.json`.

SageMaker passes every hyperparameter as a string. Each one is parsed with an explicit type
and range; an unknown key or a bad value raises `HyperparameterError` naming the key, the value
and what is expected. Keys that SageMaker or its SDK add on their own (`sagemaker_*`,
`_tuning_objective_metric`) are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import HyperparameterError

Backbone = Literal["resnet50_fpn", "resnet18_fpn", "mobilenet_v3_large_fpn"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
Norm = Literal["auto", "batch_norm", "group_norm", "frozen_batch_norm"]
Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["step", "cosine", "wsd"]
AUTO = "auto"
RESNET_LEVELS = 5  # FPN levels of the ResNet backbones (strides 4 to 64)
_IGNORED_PREFIXES = ("sagemaker_", "_tuning_")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything `train` can be told; the defaults follow torchvision's detection recipe."""

    epochs: int = field(default=10, metadata=_doc("number of passes over the training channel"))
    batch_size: int = field(default=2, metadata=_doc("images per step per process (per GPU)"))
    lr: float = field(default=0.005, metadata=_doc("peak learning rate (per whole job)"))
    optimizer: Optimizer = field(
        default="sgd", metadata=_doc("sgd (with momentum) | adamw (short runs from scratch)")
    )
    momentum: float = field(default=0.9, metadata=_doc("SGD momentum"))
    adam_beta2: float = field(
        default=0.999,
        metadata=_doc(
            "AdamW's decay of its squared-gradient average (torch's 0.999; 0.95 follows the "
            "gradients of a short run from scratch sooner)"
        ),
    )
    weight_decay: float = field(default=1e-4, metadata=_doc("weight decay"))
    lr_schedule: Schedule = field(
        default="step",
        metadata=_doc(
            "step (x lr_gamma at lr_steps) | cosine (to 0 at max_steps, max_seconds or the "
            "last epoch, whichever comes first) | wsd (warm-up, stable, decay: lr until the "
            "last lr_decay_fraction of the run, then linearly to 0 at its end)"
        ),
    )
    lr_steps: tuple[int, ...] = field(
        default=(),
        metadata=_doc("epochs (comma separated) after which lr is multiplied by lr_gamma"),
    )
    lr_gamma: float = field(default=0.1, metadata=_doc("lr factor at each of lr_steps"))
    lr_decay_fraction: float = field(
        default=0.1, metadata=_doc("wsd: the share of the run (0-1] over which lr decays to 0")
    )
    warmup_steps: int = field(default=100, metadata=_doc("linear lr warm-up steps at the start"))
    grad_clip: float = field(default=10.0, metadata=_doc("max gradient norm; 0 disables clipping"))
    backbone: str = field(default="resnet50_fpn", metadata=_doc("|".join(BACKBONES)))
    norm: Norm = field(
        default="auto",
        metadata=_doc(
            "backbone normalisation: auto (frozen_batch_norm with a pretrained channel, else "
            "batch_norm) | batch_norm | group_norm | frozen_batch_norm"
        ),
    )
    backbone_width: int = field(
        default=64,
        metadata=_doc(
            "ResNet stem width, doubled by each stage (torchvision's 64; 32 is about 4x cheaper)"
        ),
    )
    fpn_channels: int = field(default=256, metadata=_doc("FPN width (ResNet backbones)"))
    box_head_channels: int = field(default=1024, metadata=_doc("box head width"))
    mask_head_channels: int = field(default=256, metadata=_doc("mask head width"))
    mask_head_layers: int = field(default=4, metadata=_doc("mask head convolutions"))
    anchor_sizes: tuple[int, ...] | Literal["auto"] = field(
        default=(),
        metadata=_doc(
            "anchor sizes in pixels, one per FPN level (5 for ResNet), e.g. '8,16,32,64,128'; "
            "auto derives them from the training boxes; empty: 32,64,128,256,512"
        ),
    )
    trainable_backbone_layers: int = field(
        default=3,
        metadata=_doc(
            "backbone stages trained after loading a pretrained channel (0-5; 0-6 for "
            "mobilenet); without one, every stage trains"
        ),
    )
    min_size: int = field(default=800, metadata=_doc("shorter image side after resizing"))
    max_size: int = field(default=1333, metadata=_doc("longer image side limit after resizing"))
    fast: bool = field(
        default=False, metadata=_doc("smaller RPN/RoI sampling for small images and CPU runs")
    )
    detections_per_image: int = field(default=100, metadata=_doc("max detections per image"))
    box_samples_per_image: int = field(
        default=0,
        metadata=_doc(
            "RoIs sampled per image to train the box head (0: torchvision's 512, 128 with fast)"
        ),
    )
    rpn_train_proposals: int = field(
        default=0,
        metadata=_doc(
            "RPN proposals per image handed to the RoI heads in training, after NMS (twice as "
            "many per FPN level before it); 0: torchvision's 2000, 300 with fast"
        ),
    )
    roi_sampling_ratio: int = field(
        default=2,
        metadata=_doc(
            "RoIAlign sampling points per bin side (torchvision's 2; 1 suits small images, "
            "where a bin is under one feature cell)"
        ),
    )
    score_threshold: float = field(
        default=0.5, metadata=_doc("serving default: drop detections scored below it")
    )
    one_label_per_object: bool = field(
        default=False,
        metadata=_doc(
            "serving default: of overlapping detections with different labels keep the "
            "best-scored one (torchvision keeps one per label; mAP is measured on all of them)"
        ),
    )
    augment: bool = field(default=True, metadata=_doc("random horizontal flips in training"))
    num_workers: int = field(default=2, metadata=_doc("data loader worker processes"))
    seed: int = field(default=0, metadata=_doc("random seed (data order, initialisation)"))
    max_steps: int | None = field(
        default=None, metadata=_doc("stop after this many steps in total (0 or absent: no cap)")
    )
    max_seconds: float | None = field(
        default=None,
        metadata=_doc(
            "stop after this many seconds of training steps, with a checkpoint, the model and "
            "its metrics (0 or absent: no budget)"
        ),
    )
    amp: bool = field(
        default=False,
        metadata=_doc(
            "mixed precision: float16 on GPU, bfloat16 on a CPU with AVX512-BF16 or AMX "
            "(ignored on other CPUs)"
        ),
    )
    log_interval: int = field(default=20, metadata=_doc("steps between two progress lines"))
    checkpoint_steps: int = field(
        default=0, metadata=_doc("also checkpoint every N steps (0: only at epoch ends)")
    )
    keep_checkpoints: int = field(default=2, metadata=_doc("checkpoints kept in checkpoints/"))

    def as_strings(self) -> dict[str, str]:
        """Return the config as the string mapping `hyperparameters.json` would hold."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                out[f.name] = "true" if value else "false"
            elif isinstance(value, tuple):
                out[f.name] = ",".join(str(v) for v in value)
            else:
                out[f.name] = str(value)
        return out


def _unquote(value: Any) -> Any:
    # Framework estimators of the SageMaker SDK JSON-encode values ('"resnet50_fpn"').
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _bad(key: str, value: Any, expected: str) -> HyperparameterError:
    return HyperparameterError(
        f"hyperparameter {key} = {value!r} is not valid: expected {expected}; "
        f"fix it in hyperparameters.json (or the HyperParameters of the training job)."
    )


def _int(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
    expected = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"

    def parse(key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise _bad(key, value, expected)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise _bad(key, value, expected) from None
        if number < lo or (hi is not None and number > hi):
            raise _bad(key, value, expected)
        return number

    return parse


def _float(
    lo: float, hi: float | None = None, *, lo_open: bool = False
) -> Callable[[str, Any], float]:
    low = f"> {lo}" if lo_open else f">= {lo}"
    expected = f"a number {low}" + ("" if hi is None else f" and <= {hi}")

    def parse(key: str, value: Any) -> float:
        if isinstance(value, bool):
            raise _bad(key, value, expected)
        try:
            number = float(str(value).strip())
        except ValueError:
            raise _bad(key, value, expected) from None
        if not math.isfinite(number) or number < lo or (lo_open and number == lo):
            raise _bad(key, value, expected)
        if hi is not None and number > hi:
            raise _bad(key, value, expected)
        return number

    return parse


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(key, value, "true or false")


def _backbone(key: str, value: Any) -> str:
    text = str(value).strip()
    if text not in BACKBONES:
        raise _bad(key, value, "one of " + ", ".join(BACKBONES))
    return text


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise _bad(key, value, "one of " + ", ".join(choices))
        return text

    return parse


def _anchor_sizes(key: str, value: Any) -> tuple[int, ...] | str:
    text = str(value).strip().lower()
    if text in ("", "default"):
        return ()
    if text == AUTO:
        return AUTO
    expected = "increasing sizes in pixels such as '8,16,32,64,128', or auto"
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").strip("[]()").split(","))
    except ValueError:
        raise _bad(key, value, expected) from None
    if any(s < 2 for s in sizes) or list(sizes) != sorted(set(sizes)):
        raise _bad(key, value, expected)
    return sizes


def _optional_seconds(key: str, value: Any) -> float | None:
    if str(value).strip().lower() in ("", "none", "null", "0"):
        return None
    return _float(0.0, lo_open=True)(key, value)


def _epoch_list(key: str, value: Any) -> tuple[int, ...]:
    text = str(value).strip()
    if not text:
        return ()
    try:
        items = tuple(int(part) for part in text.replace(" ", "").strip("[]").split(",") if part)
    except ValueError:
        raise _bad(key, value, "comma separated epoch numbers such as '16,22'") from None
    if any(i < 1 for i in items) or list(items) != sorted(items):
        raise _bad(key, value, "increasing epoch numbers >= 1 such as '16,22'")
    return items


def _optional_steps(key: str, value: Any) -> int | None:
    if str(value).strip().lower() in ("", "none", "null", "0"):
        return None
    return _int(1)(key, value)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "epochs": _int(1),
    "batch_size": _int(1),
    "lr": _float(0.0, lo_open=True),
    "optimizer": _choice(*get_args(Optimizer)),
    "momentum": _float(0.0, 1.0),
    "adam_beta2": _float(0.0, 1.0, lo_open=True),
    "weight_decay": _float(0.0),
    "lr_schedule": _choice(*get_args(Schedule)),
    "lr_steps": _epoch_list,
    "lr_gamma": _float(0.0, 1.0, lo_open=True),
    "lr_decay_fraction": _float(0.0, 1.0, lo_open=True),
    "warmup_steps": _int(0),
    "grad_clip": _float(0.0),
    "backbone": _backbone,
    "norm": _choice(*get_args(Norm)),
    "backbone_width": _int(8, 256),
    "fpn_channels": _int(8, 1024),
    "box_head_channels": _int(8, 4096),
    "mask_head_channels": _int(8, 1024),
    "mask_head_layers": _int(1, 8),
    "anchor_sizes": _anchor_sizes,
    "trainable_backbone_layers": _int(0, 6),
    "min_size": _int(32),
    "max_size": _int(32),
    "fast": _bool,
    "detections_per_image": _int(1),
    "box_samples_per_image": _int(0, 4096),
    "rpn_train_proposals": _int(0, 10000),
    "roi_sampling_ratio": _int(1, 8),
    "score_threshold": _float(0.0, 1.0),
    "one_label_per_object": _bool,
    "augment": _bool,
    "num_workers": _int(0),
    "seed": _int(0),
    "max_steps": _optional_steps,
    "max_seconds": _optional_seconds,
    "amp": _bool,
    "log_interval": _int(1),
    "checkpoint_steps": _int(0),
    "keep_checkpoints": _int(1),
}


def parse_hyperparameters(raw: Mapping[str, Any]) -> TrainConfig:
    """Parse `hyperparameters.json` strictly into a `TrainConfig`.

    Args:
        raw: the JSON object; values are strings (JSON-quoted strings and plain JSON numbers
            or booleans are accepted too).

    Returns:
        The frozen config; keys that are absent keep their defaults.

    Raises:
        HyperparameterError: a key is unknown or a value is invalid (the first one found).
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key in sorted(raw):
        if key.startswith(_IGNORED_PREFIXES):
            continue
        if key not in known:
            raise HyperparameterError(
                f"unknown hyperparameter {key!r} = {raw[key]!r}; remove it or use one of: "
                + ", ".join(sorted(known))
                + "."
            )
        values[key] = _PARSERS[key](key, _unquote(raw[key]))
    config = TrainConfig(**values)
    limit = 6 if config.backbone == "mobilenet_v3_large_fpn" else 5
    if config.trainable_backbone_layers > limit:
        raise _bad(
            "trainable_backbone_layers",
            raw.get("trainable_backbone_layers"),
            f"an integer from 0 to {limit} for backbone {config.backbone}",
        )
    resnet = config.backbone != "mobilenet_v3_large_fpn"
    if not resnet and config.backbone_width != TrainConfig.backbone_width:
        raise _bad(
            "backbone_width",
            raw.get("backbone_width"),
            f"{TrainConfig.backbone_width} (the width applies to ResNet backbones only)",
        )
    sizes = config.anchor_sizes
    if resnet and isinstance(sizes, tuple) and sizes and len(sizes) != RESNET_LEVELS:
        raise _bad(
            "anchor_sizes",
            raw.get("anchor_sizes"),
            f"{RESNET_LEVELS} sizes, one per FPN level of {config.backbone}, or auto",
        )
    if config.max_size < config.min_size:
        raise _bad(
            "max_size",
            raw.get("max_size", config.max_size),
            f"a size >= min_size ({config.min_size})",
        )
    return config


def describe_hyperparameters() -> list[tuple[str, str, str]]:
    """Return `(name, default, description)` for every hyperparameter (for docs and --help)."""
    rows = []
    defaults = TrainConfig().as_strings()
    for f in dataclasses.fields(TrainConfig):
        rows.append((f.name, defaults.get(f.name, ""), str(f.metadata.get("doc", ""))))
    return rows
