"""torchvision Mask R-CNN builders and `pretrained` state_dict loading.

Nothing is ever downloaded (`weights=None` everywhere), so the container works under SageMaker
network isolation. Starting weights come from the optional `pretrained` channel instead: a
torchvision state_dict (`.pth`/`.pt`) of the full Mask R-CNN, of its backbone (`body.*`,
`fpn.*`), or of the bare classification network (`conv1.*`, `layer1.*`, ... or
`features.*` for MobileNet). Head tensors whose shape depends on the number of classes are
skipped when they do not fit.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import misc as misc_ops

from .errors import PretrainedError
from .roi_align import GridRoIAlign

logger = logging.getLogger(__name__)

NORM_LAYERS: tuple[str, ...] = ("batch_norm", "frozen_batch_norm", "group_norm")
# torchvision's defaults: one anchor size per FPN level (strides 4 to 64).
DEFAULT_ANCHOR_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512)
_RESNET_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")
STATE_DICT_SUFFIXES = (".pth", ".pt")
# A training job's output (warm start): its model.pth is read from inside the archive.
MODEL_ARCHIVE_SUFFIX = ".tar.gz"
ARCHIVED_WEIGHTS = "model.pth"
ARCHIVED_METADATA = "metadata.json"
RESNET_WIDTH = 64  # torchvision's ResNet stem width


def _group_norm(channels: int) -> nn.GroupNorm:
    # 32 groups (Wu & He, 2018), fewer for narrow layers: statistics per image, so small
    # batches train as well as big ones.
    return nn.GroupNorm(min(32, channels // 4) or 1, channels)


def norm_factory(name: str) -> Callable[[int], nn.Module]:
    """Return the normalisation layer constructor of a `norm_layer` name."""
    if name == "group_norm":
        return _group_norm
    if name == "frozen_batch_norm":
        frozen: Callable[[int], nn.Module] = misc_ops.FrozenBatchNorm2d
        return frozen
    if name == "batch_norm":
        return nn.BatchNorm2d
    raise ValueError(f"unknown norm_layer {name!r}")  # guarded by hyperparams


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Everything needed to rebuild the same network for training and for serving.

    Attributes:
        backbone: resnet50_fpn, resnet18_fpn or mobilenet_v3_large_fpn.
        num_classes: number of categories + 1 (background).
        min_size: shorter side after the model's internal resize.
        max_size: longer side limit after the model's internal resize.
        trainable_backbone_layers: backbone stages left trainable.
        fast: smaller RPN/RoI sampling (for small images and CPU runs).
        detections_per_image: max detections per image.
        norm_layer: `frozen_batch_norm` (fine-tuning from pretrained weights), `batch_norm` or
            `group_norm` (from scratch).
        fpn_channels: width of the FPN and of the heads' input (ResNet backbones).
        box_head_channels: width of the box head's two fully connected layers.
        mask_head_channels: width of the mask head's convolutions.
        mask_head_layers: number of the mask head's convolutions.
        anchor_sizes: one anchor size in pixels per FPN level (after the model's resize).
        box_samples_per_image: RoIs sampled per image for the box head's loss (0: torchvision's
            512, or 128 with `fast`).
        rpn_train_proposals: RPN proposals per image for the RoI heads in training, after NMS
            (twice as many per FPN level before it); 0: torchvision's 2000, or 300 with `fast`.
            Inference keeps its own counts.
        roi_sampling_ratio: RoIAlign sampling points per bin side, for the box and mask heads.
        backbone_width: channels of a ResNet's first stage (torchvision's 64; each later stage
            doubles it): 32 costs about a quarter of the convolutions, enough for simple shapes.
    """

    backbone: str
    num_classes: int
    min_size: int = 800
    max_size: int = 1333
    trainable_backbone_layers: int = 3
    fast: bool = False
    detections_per_image: int = 100
    norm_layer: str = "frozen_batch_norm"
    fpn_channels: int = 256
    box_head_channels: int = 1024
    mask_head_channels: int = 256
    mask_head_layers: int = 4
    anchor_sizes: tuple[int, ...] = DEFAULT_ANCHOR_SIZES
    box_samples_per_image: int = 0
    rpn_train_proposals: int = 0
    roi_sampling_ratio: int = 2
    backbone_width: int = RESNET_WIDTH

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as JSON-ready values (stored in `metadata.json`)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSpec:
        """Rebuild a spec from `to_dict()` output."""
        names = set(cls.__dataclass_fields__)
        kept = {k: v for k, v in values.items() if k in names}
        if "anchor_sizes" in kept:  # JSON has lists, the spec tuples
            kept["anchor_sizes"] = tuple(int(v) for v in kept["anchor_sizes"])
        return cls(**kept)


def _rewiden(body: torchvision.models.ResNet, width: int) -> None:
    """Rebuild `body`'s stem and stages `width` channels wide, initialised as torchvision does."""
    block = type(body.layer1[0])
    body.inplanes = width
    body.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    body.bn1 = body._norm_layer(width)
    for k, name in enumerate(("layer1", "layer2", "layer3", "layer4")):
        blocks = len(getattr(body, name))
        stage = body._make_layer(block, width * 2**k, blocks, stride=1 if k == 0 else 2)
        setattr(body, name, stage)
    body.fc = nn.Linear(body.inplanes, body.fc.out_features)
    for module in body.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)


def resnet_fpn(spec: ModelSpec) -> BackboneWithFPN:
    """Build a ResNet FPN backbone of `spec.fpn_channels` channels (as torchvision's builder).

    The layer names equal torchvision's `resnet_fpn_backbone`, so its state_dicts still load.
    """
    norm = norm_factory(spec.norm_layer)
    body = getattr(torchvision.models, spec.backbone.removesuffix("_fpn"))(
        weights=None, norm_layer=norm
    )
    if spec.backbone_width != RESNET_WIDTH:
        _rewiden(body, spec.backbone_width)
    trained = list(_RESNET_STAGES[: spec.trainable_backbone_layers])
    if spec.trainable_backbone_layers == len(_RESNET_STAGES):
        trained.append("bn1")
    for name, parameter in body.named_parameters():
        if not name.startswith(tuple(trained)):
            parameter.requires_grad_(False)
    stage2 = body.inplanes // 8
    return BackboneWithFPN(
        body,
        {f"layer{k + 1}": str(k) for k in range(4)},
        [stage2 * 2**k for k in range(4)],
        spec.fpn_channels,
    )


def build_model(spec: ModelSpec) -> MaskRCNN:
    """Build an untrained Mask R-CNN for `spec` (no weights are downloaded).

    Args:
        spec: the architecture.

    Returns:
        The model, in training mode.
    """
    kwargs: dict[str, Any] = {
        "num_classes": None,  # the predictors below carry the classes
        "min_size": spec.min_size,
        "max_size": spec.max_size,
        "box_detections_per_img": spec.detections_per_image,
    }
    if spec.fast:
        # Measured on CPU: ~1.5x faster training and ~3x faster inference on small images.
        kwargs.update(
            rpn_pre_nms_top_n_train=600,
            rpn_post_nms_top_n_train=300,
            rpn_pre_nms_top_n_test=300,
            rpn_post_nms_top_n_test=100,
            box_batch_size_per_image=128,
        )
    if spec.box_samples_per_image:
        kwargs["box_batch_size_per_image"] = spec.box_samples_per_image
    if spec.rpn_train_proposals:
        kwargs.update(
            rpn_pre_nms_top_n_train=2 * spec.rpn_train_proposals,
            rpn_post_nms_top_n_train=spec.rpn_train_proposals,
        )
    backbone: nn.Module
    if spec.backbone == "mobilenet_v3_large_fpn":
        backbone = mobilenet_backbone(
            backbone_name="mobilenet_v3_large",
            weights=None,
            fpn=True,
            norm_layer=norm_factory(spec.norm_layer),
            trainable_layers=spec.trainable_backbone_layers,
        )
        # The MobileNet FPN returns 3 feature maps, each gets every anchor size.
        sizes: tuple[tuple[int, ...], ...] = (spec.anchor_sizes,) * 3
    elif spec.backbone in ("resnet50_fpn", "resnet18_fpn"):
        backbone = resnet_fpn(spec)
        sizes = tuple((size,) for size in spec.anchor_sizes)  # one size per FPN level
    else:
        raise ValueError(f"unknown backbone {spec.backbone!r}")  # guarded by hyperparams
    channels = int(backbone.out_channels)  # type: ignore[arg-type]  # an int attribute
    generator = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    resolution = 7  # torchvision's RoIAlign output for the box head
    levels = ["0", "1", "2", "3"]  # the FPN maps RoIs are pooled from (not the pool level)
    kwargs.update(
        box_roi_pool=GridRoIAlign(levels, resolution, spec.roi_sampling_ratio),
        mask_roi_pool=GridRoIAlign(levels, 14, spec.roi_sampling_ratio),
        rpn_anchor_generator=generator,
        box_head=TwoMLPHead(channels * resolution**2, spec.box_head_channels),
        box_predictor=FastRCNNPredictor(spec.box_head_channels, spec.num_classes),
        mask_head=MaskRCNNHeads(channels, (spec.mask_head_channels,) * spec.mask_head_layers, 1),
        mask_predictor=MaskRCNNPredictor(
            spec.mask_head_channels, spec.mask_head_channels, spec.num_classes
        ),
    )
    return MaskRCNN(backbone, **kwargs)


def find_state_dict(channel_dir: Path) -> Path:
    """Return the single `.pth`/`.pt` file, or `model.tar.gz`, of the `pretrained` channel.

    A `model.tar.gz` is another training job's output (a warm start): its `model.pth` is read
    from inside it by `read_pretrained`.

    Raises:
        PretrainedError: there is none, or more than one.
    """
    files = sorted(
        p
        for p in channel_dir.rglob("*")
        if p.is_file()
        and (p.suffix in STATE_DICT_SUFFIXES or p.name.endswith(MODEL_ARCHIVE_SUFFIX))
    )
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise PretrainedError(
            f"the pretrained channel ({channel_dir}) must hold exactly one .pth/.pt state_dict "
            f"or one model.tar.gz of a training job, found {found}; upload one file saved with "
            "torch.save(model.state_dict(), path)."
        )
    return files[0]


def _archive_members(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Return the bytes of those regular files `names` that the archive `path` holds (one pass)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if member.isfile() and name in names and name not in found:
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        found[name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PretrainedError(
            f"{path.name} in the pretrained channel is not a readable .tar.gz ({exc}); use the "
            "model.tar.gz a training job of this container wrote."
        ) from exc
    return found


def _origin(raw: bytes | None) -> dict[str, Any]:
    try:
        metadata = json.loads(raw) if raw is not None else {}
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict):
        return {}
    keys = ("training_job_name", "source_commit", "created")
    return {key: metadata[key] for key in keys if isinstance(metadata.get(key), str)}


def read_pretrained(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a state_dict safely (`weights_only`), unwrapping `{"model": ...}` checkpoints.

    A `model.tar.gz` is read once, for its `model.pth` and its `metadata.json`.

    Returns:
        The state_dict, and where it comes from: the archived metadata's training job, commit
        and creation time (empty for a plain state_dict file or an archive without metadata).

    Raises:
        PretrainedError: the file is not a state_dict of tensors.
    """
    source: Path | io.BytesIO = path
    origin: dict[str, Any] = {}
    if path.name.endswith(MODEL_ARCHIVE_SUFFIX):
        members = _archive_members(path, (ARCHIVED_WEIGHTS, ARCHIVED_METADATA))
        if ARCHIVED_WEIGHTS not in members:
            raise PretrainedError(
                f"{path.name} in the pretrained channel holds no {ARCHIVED_WEIGHTS}; use the "
                "model.tar.gz a training job of this container wrote."
            )
        source = io.BytesIO(members[ARCHIVED_WEIGHTS])
        origin = _origin(members.get(ARCHIVED_METADATA))
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise PretrainedError(
            f"{path.name} in the pretrained channel cannot be loaded as a state_dict ({exc}); "
            "save it with torch.save(model.state_dict(), path)."
        ) from exc
    for key in ("model", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise PretrainedError(
            f"{path.name} in the pretrained channel is not a state_dict (a dict of tensors); "
            "save it with torch.save(model.state_dict(), path)."
        )
    return {k.removeprefix("module."): v for k, v in loaded.items()}, origin


def _target_for(model: MaskRCNN, state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, str]:
    keys = set(state)
    if any(k.startswith(("roi_heads.", "rpn.")) for k in keys) or any(
        k.startswith("backbone.") for k in keys
    ):
        return model, "full model"
    if any(k.startswith(("body.", "fpn.")) for k in keys):
        return model.backbone, "backbone"
    return model.backbone.body, "classification network"


def load_pretrained(model: MaskRCNN, path: Path) -> dict[str, Any]:
    """Load a torchvision state_dict into `model` (full model, backbone or classifier).

    Tensors whose shape differs only because the number of classes differs (the box and mask
    predictors) are skipped; any other mismatch is an error.

    Args:
        model: the freshly built model.
        path: the `.pth` file, or another training job's `model.tar.gz`.

    Returns:
        Counts: `loaded`, `skipped` (class-dependent heads), `missing` (left at init); for a
        `model.tar.gz` also the `training_job_name`, `source_commit` and `created` of its
        `metadata.json`.

    Raises:
        PretrainedError: nothing matches, or a backbone tensor has the wrong shape.
    """
    state, origin = read_pretrained(path)
    target, kind = _target_for(model, state)
    own = target.state_dict()
    usable: dict[str, torch.Tensor] = {}
    skipped = 0
    for key, tensor in state.items():
        if key not in own:
            continue
        if own[key].shape != tensor.shape:
            if ".box_predictor." in key or ".mask_predictor." in key:
                skipped += 1
                continue
            raise PretrainedError(
                f"{path.name}: tensor {key} has shape {tuple(tensor.shape)} but the model "
                f"expects {tuple(own[key].shape)}; the state_dict was saved for another backbone "
                "than the 'backbone' hyperparameter, so make them match."
            )
        usable[key] = tensor
    # FrozenBatchNorm2d has no num_batches_tracked; BatchNorm2d tolerates its absence.
    wanted = [k for k in own if not k.endswith("num_batches_tracked")]
    if not usable:
        raise PretrainedError(
            f"{path.name} matches none of the {len(wanted)} tensors of the model's {kind} "
            f"(first key {next(iter(state), 'none')!r}); use a state_dict of the same "
            "torchvision architecture as the 'backbone' hyperparameter."
        )
    target.load_state_dict(usable, strict=False)
    missing = len([k for k in wanted if k not in usable])
    logger.info(
        "pretrained=%s kind=%s loaded=%d skipped=%d missing=%d",
        path.name,
        kind.replace(" ", "_"),
        len(usable),
        skipped,
        missing,
    )
    return {"loaded": len(usable), "skipped": skipped, "missing": missing, **origin}
