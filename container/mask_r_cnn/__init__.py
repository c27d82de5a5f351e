"""Mask R-CNN bring-your-own container: SageMaker `train` and `serve` on torchvision.

Modules (one concern each): `env` (the SageMaker directory tree), `hyperparams` (strict
`TrainConfig`), `data` and `transforms` (COCO and PennFudan data sets), `model` (torchvision
Mask R-CNN builders), `engine` (training and evaluation loops), `metrics` (pycocotools),
`checkpoint`, `distributed`, `train` (the `train` program), `predictor`/`wsgi`/`serve` (the
`serve` program) and `synthetic` (a deterministic synthetic COCO data set). Nothing here reads
the environment or touches the file system at import time.
"""

from __future__ import annotations

__version__ = "0.1.0"
