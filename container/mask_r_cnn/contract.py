"""The container's contract with SageMaker and with the state machine, defined once, torch-free.

The `workflow` package imports this module to put the container's own `MetricDefinitions` into
the deployed state machine, so the regexes SageMaker scrapes and the log lines `train` writes can
never drift apart. Nothing here imports torch or touches the file system.

Log lines (stderr) that the definitions read:

```
epoch=1 step=20 loss=0.8120 lr=0.005 loss_box_reg=... loss_classifier=... ...
epoch=1 step=40 train_loss=0.7512 epoch_seconds=12.3
validation: bbox_mAP=0.4100 segm_mAP=0.3700 bbox_AP50=... segm_AP50=... epoch=1
```
"""

from __future__ import annotations

# Exit codes of `train` (SageMaker reports any non-zero exit as a failed job; the failure file
# says why).
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_STOPPED = 143

# Files `train` writes under `model/` (what `serve` reads back).
MODEL_FILE = "model.pth"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
METADATA_FORMAT = 1

# The most shapes the synthetic data set (`mask_r_cnn.synthetic`) draws into one image: the upper
# bound of `--train-shapes` there and of `local.dataset.train_shapes` in the workflow's config.
MAX_SHAPES = 8

# SageMaker `MetricDefinitions` for the log lines above (the first group is the value). The step
# loss may be `nan` (a diverged run is still reported); mAP lines carry the `validation:` anchor
# so that a hyperparameter echo can never be scraped as a metric.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "train:loss", "Regex": r"\bloss=([-+0-9.eE]+|nan)"},
    {"Name": "train:lr", "Regex": r"\blr=([-+0-9.eE]+)"},
    {"Name": "train:epoch_loss", "Regex": r"\btrain_loss=([-+0-9.eE]+|nan)"},
    {"Name": "validation:bbox_mAP", "Regex": r"validation: .*\bbbox_mAP=([0-9.]+)"},
    {"Name": "validation:segm_mAP", "Regex": r"validation: .*\bsegm_mAP=([0-9.]+)"},
)
