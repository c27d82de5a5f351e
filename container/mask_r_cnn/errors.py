"""Exceptions of the container, one tree rooted at `MaskRCNNError`.

```
MaskRCNNError
├── UserInputError          the job's input is wrong; the message says what and how to fix it
│   ├── ChannelError        a data channel is missing or empty
│   ├── DataError           an annotation file or image is invalid
│   ├── HyperparameterError a hyperparameter is unknown or has a bad value
│   └── PretrainedError     the `pretrained` channel does not fit the model
├── TrainingError           training itself failed (for example a non-finite loss)
├── NoSpaceError            the disk is full while writing a checkpoint or the model
└── RequestError            a bad inference request; carries the HTTP status
```

Every message is one sentence that names the offending value and the fix, because its first
line becomes the job's `FailureReason` (SageMaker keeps the first 1024 characters).
"""

from __future__ import annotations


class MaskRCNNError(Exception):
    """Root of every error this package raises on purpose."""


class UserInputError(MaskRCNNError):
    """The job's input (data, configuration, hyperparameters) is wrong."""


class ChannelError(UserInputError):
    """A data channel is missing or holds no usable data."""


class DataError(UserInputError):
    """An annotation file or an image of a channel is invalid."""


class HyperparameterError(UserInputError):
    """A hyperparameter is unknown or its value cannot be used."""


class PretrainedError(UserInputError):
    """The state_dict in the `pretrained` channel does not fit the model."""


class TrainingError(MaskRCNNError):
    """Training failed for a reason that is not bad input (for example a non-finite loss)."""


class NoSpaceError(MaskRCNNError):
    """A checkpoint or model file could not be written: no space left on the device."""


class StoppedError(MaskRCNNError):
    """Training was stopped by SIGTERM after saving a checkpoint."""


class RequestError(MaskRCNNError):
    """A bad inference request.

    Attributes:
        status: the HTTP status code to answer with (4xx).
    """

    def __init__(self, status: int, message: str) -> None:
        """Create the error with its HTTP status and its one-sentence message."""
        super().__init__(message)
        self.status = status
