"""The value types of the configuration keys and the checks they carry, each with its message.

Each type parses a value the way `workflow.yaml` spells it (no silent string conversion: a quoted
``"2"`` is not an integer, ``"yes"`` is not a boolean) and reports a problem as the expectation
that completes the sentence ``<key> = <value> ...``. Environment and ``--set`` strings are turned
into YAML values first (`workflow.config.loader`), so all three sources are judged alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

from mask_r_cnn.contract import MAX_SHAPES
from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

from workflow.contracts import SAGEMAKER_NAME_PATTERN

# The pydantic error type of every problem this package reports itself; `loader` turns it into
# the ``<key> = <value> <expectation>`` sentence.
PROBLEM = "config"


def problem(expectation: str, **context: Any) -> PydanticCustomError:
    """Return the validation error whose message is ``expectation`` (context: key, value)."""
    return PydanticCustomError(PROBLEM, "{expectation}", {"expectation": expectation, **context})


@dataclass(frozen=True)
class Pattern:
    """A string that must match ``regex`` in full; ``expectation`` says what was expected."""

    regex: str
    expectation: str

    def fails(self, value: str) -> str | None:
        """Return the expectation when ``value`` does not match, else None."""
        return None if re.fullmatch(self.regex, value) else self.expectation

    def __call__(self, value: str) -> str:
        """Validate ``value`` (a pydantic after-validator)."""
        expectation = self.fails(value)
        if expectation:
            raise problem(expectation, value=value)
        return value


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` inclusive (the bounds the template must share)."""

    low: float
    high: float
    unit: str = ""

    def __call__(self, value: float) -> float:
        """Validate ``value`` (a pydantic after-validator)."""
        if not self.low <= value <= self.high:
            raise problem(
                f"is out of range (expected {self.low:g} to {self.high:g}{self.unit})", value=value
            )
        return value


@dataclass(frozen=True)
class Multiple:
    """A whole multiple of ``step`` (e.g. a CloudWatch period in whole minutes)."""

    step: int
    unit: str = ""

    def __call__(self, value: int) -> int:
        """Validate ``value`` (a pydantic after-validator)."""
        if value % self.step:
            raise problem(f"is not a multiple of {self.step}{self.unit}", value=value)
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings (a before-validator of a ``Literal`` type)."""

    choices: tuple[str, ...]

    def __call__(self, value: Any) -> str:
        """Validate ``value`` (a pydantic before-validator)."""
        text = _text(value)
        if text not in self.choices:
            raise problem(f"is not one of {', '.join(self.choices)}", value=text)
        return text


def _required(value: Any) -> None:
    if value is None:
        raise problem("must be set (it has no derived default); give it a value")


def _text(value: Any) -> str:
    _required(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Unquoted digits (e.g. account_id): leading zeros are lost, so the pattern check tells.
        return str(value)
    raise problem("is not a string; quote it")


def _integer(value: Any) -> int:
    _required(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise problem("is not an integer (e.g. 1)")


def _number(value: Any) -> float:
    _required(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise problem("is not a number (e.g. 0.5)")


def _flag(value: Any) -> bool:
    _required(value)
    if isinstance(value, bool):
        return value
    raise problem("is not a boolean (expected true or false)")


_HYPERPARAMETER_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,256}")


def _mapping(value: Any) -> Mapping[Any, Any]:
    _required(value)
    if not isinstance(value, Mapping):
        raise problem("is not a mapping of names to values (e.g. {epochs: '10'})")
    return value


def _hyperparameter_name(name: Any) -> str:
    if not isinstance(name, str) or not _HYPERPARAMETER_NAME.fullmatch(name):
        raise problem("has an invalid hyperparameter name (expected 1-256 of A-Za-z0-9_.:/-)")
    return name


def _hyperparameter_value(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return str(item)  # SageMaker passes hyperparameters as strings
    raise problem("is not a string or number (SageMaker passes strings); quote it")


def _sagemaker_limits(value: Mapping[str, str]) -> Mapping[str, str]:
    """SageMaker's limits: up to 100 hyperparameters of up to 2500 characters each."""
    if len(value) > 100:
        raise problem(
            "has more than 100 entries (SageMaker's limit)", value=f"<{len(value)} entries>"
        )
    for name, item in value.items():
        if len(item) > 2500:
            raise problem("is longer than 2500 characters", key=name, value=item[:20] + "...")
    # Read-only: a frozen configuration must not change through its mappings either.
    return MappingProxyType(dict(value))


Text = Annotated[str, BeforeValidator(_text)]
Integer = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
# A problem with a name is reported at the map's key (loc ends in "[key]"), with a value at its
# entry (``training.hyperparameters.epochs``).
Hyperparameters = Annotated[
    Mapping[
        Annotated[str, BeforeValidator(_hyperparameter_name)],
        Annotated[str, BeforeValidator(_hyperparameter_value)],
    ],
    BeforeValidator(_mapping),
    AfterValidator(_sagemaker_limits),
    PlainSerializer(dict),
]


def _image_mapping(value: Any) -> Mapping[Any, Any]:
    _required(value)
    if not isinstance(value, Mapping):
        raise problem("is not a mapping of image URIs to folders (e.g. {IMAGE_URI: ./other})")
    return value


def _read_only(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _shape_range(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= value[1] <= MAX_SHAPES
    ):
        return (value[0], value[1])
    raise problem(
        f"is not [fewest, most] shapes per image between 0 and {MAX_SHAPES} (e.g. [2, 5]), "
        "nor null for the 0-4 of the held-out splits"
    )


def _as_list(value: tuple[int, int] | None) -> list[int] | None:
    return None if value is None else list(value)


# local.dataset.train_shapes: [fewest, most] shapes per generated training image, or null.
ShapeRange = Annotated[
    tuple[int, int] | None, BeforeValidator(_shape_range), PlainSerializer(_as_list)
]


# local.images: image URI -> folder holding the image's mask_r_cnn/train and mask_r_cnn/serve.
ImageFolders = Annotated[
    Mapping[Text, Text],
    BeforeValidator(_image_mapping),
    AfterValidator(_read_only),
    PlainSerializer(dict),
]

NAME = Pattern(
    r"[A-Za-z][A-Za-z0-9-]{0,62}",
    "is not a valid name (expected 1-63 characters of letters, digits and '-', starting with a "
    "letter, e.g. 'mask-r-cnn-mlops')",
)
REGION = Pattern(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "is not an AWS region (e.g. 'us-east-1')")
ACCOUNT = Pattern(r"\d{12}", "is not an AWS account ID (expected 12 digits in quotes)")
ROLE = Pattern(
    r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
    "is not an IAM role ARN (expected 'arn:aws:iam::123456789012:role/NAME')",
)
BUCKET = Pattern(
    r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
    "is not a valid S3 bucket name (expected 3-63 lower-case letters, digits, '.' and '-'); "
    "set s3.bucket",
)
PREFIX = Pattern(
    r"([A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*)?",
    "is not a valid key prefix (expected segments of letters, digits and !_.*'()- separated by "
    "'/', with no leading or trailing '/')",
)
ECR = Pattern(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
    "is not a valid ECR repository name (expected lower-case letters, digits and ._-/, "
    "e.g. 'mask-r-cnn')",
)
CODEBUILD = Pattern(
    r"[A-Za-z0-9][A-Za-z0-9_-]{1,254}",
    "is not a valid CodeBuild project name (expected 2-255 letters, digits, '-' and '_')",
)
LAMBDA = Pattern(
    r"[A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:[A-Za-z0-9_$-]+)?",
    "is not a Lambda function name or ARN (expected up to 64 letters, digits, '-' and '_')",
)
INSTANCE = Pattern(
    r"ml\.[a-z0-9-]+\.[a-z0-9]+",
    "is not a SageMaker instance type (expected 'ml.*', e.g. 'ml.m5.xlarge')",
)
SSM = Pattern(
    r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*",
    "is not an SSM parameter name (expected e.g. '/mask-r-cnn/hyperparameters')",
)
EMAIL = Pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "is not an e-mail address")
TOPIC = Pattern(
    r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}",
    "is not an SNS topic ARN (expected 'arn:aws:sns:REGION:ACCOUNT:NAME')",
)
MODEL_PACKAGE_GROUP = Pattern(
    SAGEMAKER_NAME_PATTERN,
    "is not a valid SageMaker model package group name (expected 1-63 letters, digits and '-', "
    "not starting or ending with '-')",
)
ENDPOINT = Pattern(
    SAGEMAKER_NAME_PATTERN,
    "is not a valid SageMaker endpoint name (expected 1-63 letters, digits and '-', not starting "
    "or ending with '-')",
)
