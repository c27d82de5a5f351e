"""The configuration variants whose ASL documents are golden files (``tests/golden``)."""

from __future__ import annotations

MINIMAL = {
    "evaluation.enabled": False,
    "gate.enabled": False,
    "approval.enabled": False,
    "registry.enabled": False,
    "notification.enabled": False,
}
VARIANTS = {
    "full": {},
    "minimal": MINIMAL,
    "ssm_spot": {
        "training.hyperparameters_ssm_parameter": "/mask-r-cnn/hyperparameters",
        "training.spot": True,
        "approval.enabled": False,
    },
}
