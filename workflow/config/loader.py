"""`load_config`: layer the sources of the configuration, then validate them all at once.

Precedence (later wins): the models' defaults < `workflow.yaml` < ``MLOPS_*`` environment <
overrides (CLI ``--set KEY=VALUE``). A whole mapping replaces (``training.hyperparameters:
{...}``); one entry patches (``MLOPS_TRAINING__HYPERPARAMETERS__EPOCHS=20``). Environment and
``--set`` strings are read as the YAML value they spell for the key's type (``yes`` is true for a
flag, ``null`` or empty unsets an optional key). Each value remembers its source, so a problem
names the variable or flag it came from. Every problem is reported together in one `ConfigError`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import InitSettingsSource

from workflow.config.checks import PROBLEM
from workflow.config.models import (
    CROSS_CHECKS,
    DEFAULT_CONFIG_FILE,
    DERIVED_FROM,
    ENV_CONFIG,
    ENV_PREFIX,
    ENV_SEPARATOR,
    WorkflowConfig,
    derived_defaults,
)
from workflow.errors import ConfigError

_DERIVED = "derived"  # the origin of a derived default
_KEYS_ARE_LISTED = "the keys are listed in workflow/config/models.py and README 'Configuration'"


def _sections(model: type[BaseModel]) -> dict[str, FieldInfo | type[BaseModel]]:
    """Return each key of ``model``: a nested section's model, or a leaf's field."""
    out: dict[str, FieldInfo | type[BaseModel]] = {}
    for key, info in model.model_fields.items():
        annotation = info.annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        out[key] = annotation if is_section else info  # type: ignore[assignment]
    return out


def default_values() -> dict[str, Any]:
    """Return the built-in defaults as a nested dict (derived values left as None)."""

    def walk(model: type[BaseModel]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, node in _sections(model).items():
            if isinstance(node, FieldInfo):
                default = None if node.is_required() else node.default
                if isinstance(default, Mapping):
                    default = dict(default)
                elif isinstance(default, tuple):  # as YAML spells it
                    default = list(default)
                out[key] = default
            else:
                out[key] = walk(node)
        return out

    return walk(WorkflowConfig)


def known_keys() -> list[str]:
    """Return every dotted key, e.g. ``gate.threshold``, in the order of the models."""

    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        keys: list[str] = []
        for key, node in _sections(model).items():
            keys += [prefix + key] if isinstance(node, FieldInfo) else walk(node, f"{prefix}{key}.")
        return keys

    return walk(WorkflowConfig, "")


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> WorkflowConfig:
    """Load, merge and validate the configuration.

    Args:
        path: The YAML file. None: ``$MLOPS_CONFIG``, else the first ``workflow.yaml`` in the
            current directory or its parents, else the defaults alone.
        environ: The environment to read ``MLOPS_*`` overrides from.
        overrides: Values on top of everything (CLI flags), as dotted keys
            (``{"gate.threshold": 0.4}``) or nested mappings (``{"gate": {"threshold": 0.4}}``).
            Strings are parsed like environment values.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With every problem found, each naming the key, the value and the fix.
    """
    file_path = _resolve_path(path, environ)
    source = str(file_path) if file_path is not None else "defaults"
    layers = _Layers()
    if file_path is not None:
        layers.merge_file(layers.raw, _read_yaml(file_path), WorkflowConfig, "")
    layers.merge_environ(environ)
    if overrides:
        layers.merge_overrides(overrides)
    layers.derive()
    config: WorkflowConfig | None = None
    invalid: set[str] = set()
    try:
        # The one source is the layered values (see WorkflowConfig.settings_customise_sources);
        # `_build_sources` is BaseSettings' documented hook, unknown to the type checker.
        sources = (InitSettingsSource(WorkflowConfig, init_kwargs=layers.raw),)
        config = WorkflowConfig(_build_sources=(sources, {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        layers.problems += layers.explain(exc)
        invalid = {".".join(str(part) for part in error["loc"]) for error in exc.errors()}
    layers.cross_check(invalid)
    if layers.problems or config is None:
        raise ConfigError(layers.problems, source=source)
    config._source = source
    return config


def _resolve_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    # The current directory, then its parents (a notebook runs in notebooks/).
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            return candidate if folder != here else Path(DEFAULT_CONFIG_FILE)
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ["the file does not exist; create it (see README 'Configuration') or pass --config"],
            source=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot be read ({exc.strerror})"], source=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            [f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the syntax"],
            source=str(path),
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"holds a {type(data).__name__}, expected a mapping of keys (e.g. 'region: us-east-1')"
            ],
            source=str(path),
        )
    return data


def _lookup(parts: list[str]) -> tuple[FieldInfo | None, list[str], list[str]]:
    """Find the field of a key path; return (field, path to the field, rest inside a map)."""
    node: type[BaseModel] = WorkflowConfig
    for i, part in enumerate(parts):
        child = _sections(node).get(part)
        if child is None:
            return None, parts[:i], parts[i:]
        if isinstance(child, FieldInfo):
            return child, parts[: i + 1], parts[i + 1 :]
        node = child
    return None, parts, []


def _kind(info: FieldInfo) -> str:
    """Return how an environment string spells a value of this field: str|bool|int|float|map|list."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, UnionType):  # an optional key: X | None
        annotation = next(t for t in get_args(annotation) if t is not type(None))
    base = get_origin(annotation) or annotation
    if base in (bool, int, float):
        return base.__name__
    if base in (tuple, list):
        return "list"
    return "map" if isinstance(base, type) and issubclass(base, Mapping) else "str"


def _parse_text(info: FieldInfo, optional: bool, text: str) -> Any:
    """Turn an environment / CLI string into the YAML value it spells, per the key's type."""
    stripped = text.strip()
    if optional and stripped.lower() in ("", "null", "none", "~"):
        return None
    kind = _kind(info)
    if kind == "bool":
        lowered = stripped.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        return text
    if kind in ("int", "float", "map", "list"):
        import yaml

        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
    return text


class _Layers:
    """The values layered so far, where each came from, and the problems found on the way."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = default_values()
        self.origins: dict[str, str] = {}
        self.problems: list[str] = []

    def merge_file(
        self, raw: dict[str, Any], data: Mapping[Any, Any], model: type[BaseModel], prefix: str
    ) -> None:
        """Merge `workflow.yaml` data; an unknown key is a problem (with a did-you-mean)."""
        sections = _sections(model)
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            node = sections.get(key) if isinstance(key, str) else None
            if node is None:
                close = [k for k in sections if isinstance(key, str) and _similar(key, k)]
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
                self.problems.append(
                    f"{dotted} is not a configuration key (known at this level: "
                    f"{', '.join(prefix + k for k in sections)}){hint}; remove or rename it"
                )
            elif isinstance(node, FieldInfo):
                raw[key] = value
                self.origins.pop(dotted, None)
            elif isinstance(value, Mapping):
                self.merge_file(raw[key], value, node, dotted + ".")
            else:
                self.problems.append(
                    f"{dotted} = {value!r} must be a mapping with the keys "
                    f"{', '.join(node.model_fields)}; indent them under '{key}:'"
                )

    def set_value(self, parts: list[str], value: Any, origin: str) -> None:
        """Set one key (or one entry of a map) from the environment or a flag."""
        info, walked, rest = _lookup(parts)
        dotted = ".".join(parts)
        if info is None or (rest and _kind(info) != "map"):
            close = difflib.get_close_matches(dotted, known_keys(), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            self.problems.append(
                f"{origin} does not name a configuration key ('{dotted}' is unknown); {hint}"
                + _KEYS_ARE_LISTED
            )
            return
        target = self.raw
        for part in walked[:-1]:
            target = target[part]
        key = ".".join(walked)
        if rest:  # one entry of a map, e.g. training.hyperparameters.epochs
            current = target[walked[-1]]
            target[walked[-1]] = {
                **(current if isinstance(current, dict) else {}),
                ".".join(rest): value,
            }
        elif isinstance(value, str):
            optional = type(None) in get_args(info.annotation) or key in _derived_keys()
            target[walked[-1]] = _parse_text(info, optional, value)
        else:
            target[walked[-1]] = value
        self.origins[key] = origin

    def merge_environ(self, environ: Mapping[str, str]) -> None:
        """Merge ``MLOPS_<KEY>`` and ``MLOPS_<SECTION>__<KEY>`` variables."""
        for name in sorted(environ):
            if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
                continue
            parts = name[len(ENV_PREFIX) :].lower().split(ENV_SEPARATOR)
            if not all(parts):
                self.problems.append(
                    f"environment variable {name} is malformed; use MLOPS_<SECTION>__<KEY>, "
                    "e.g. MLOPS_S3__BUCKET"
                )
                continue
            self.set_value(parts, environ[name], name)

    def merge_overrides(self, overrides: Mapping[str, Any]) -> None:
        """Merge ``--set`` values, given as dotted keys or nested mappings."""

        def flatten(data: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
            items: list[tuple[str, Any]] = []
            for key, value in data.items():
                dotted = f"{prefix}{key}"
                info, _, _ = _lookup(dotted.split("."))
                if isinstance(value, Mapping) and info is None:
                    items.extend(flatten(value, dotted + "."))
                else:
                    items.append((dotted, value))
            return items

        for dotted, value in flatten(overrides, ""):
            self.set_value(dotted.split("."), value, f"--set {dotted}")

    def derive(self) -> None:
        """Fill each unset derived key from name/region/account_id, when those are valid."""
        base = {key: self.raw[key] for key in DERIVED_FROM}
        if not all(
            isinstance(value, (str, int)) and not isinstance(value, bool) for value in base.values()
        ) or any(DERIVED_FROM[key].fails(str(value)) for key, value in base.items()):
            # Already reported; derived names would only repeat the problem. Leave them unset.
            for key in _derived_keys():
                *section, leaf = key.split(".")
                target = self.raw
                for part in section:
                    target = target[part]
                if target.get(leaf) is None:
                    target.pop(leaf, None)
            return
        defaults = derived_defaults(str(base["name"]), str(base["region"]), str(base["account_id"]))
        for key, default in defaults.items():
            *section, leaf = key.split(".")
            target = self.raw
            for part in section:
                target = target[part]
            if target.get(leaf) is None:
                target[leaf] = default
                self.origins[key] = _DERIVED

    def value(self, key: str) -> Any:
        """Return the layered value of a dotted key."""
        node: Any = self.raw
        for part in key.split("."):
            node = node[part]
        return node

    def cross_check(self, invalid: set[str]) -> None:
        """Apply the rules between keys whose values are valid (`models.CROSS_CHECKS`)."""
        for key, inputs, rule in CROSS_CHECKS:
            if invalid.intersection(inputs):
                continue
            expectation = rule(*(self.value(name) for name in inputs))
            if expectation:
                self.problems.append(self.line(key, self.value(key), expectation))

    def explain(self, exc: ValidationError) -> list[str]:
        """Turn pydantic's errors into ``<key> = <value> (from <origin>) <expectation>`` lines."""
        lines: list[str] = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            context = error.get("ctx") or {}
            if error["type"] == "missing" and ".".join(loc) in _derived_keys():
                continue  # left unset because name/region/account_id is bad (reported)
            if error["type"] == PROBLEM:
                if loc[-1:] == ["[key]"]:  # a map's key: the problem is the map's
                    loc = loc[:-2]
                key = ".".join([*loc, *([context["key"]] if "key" in context else [])])
                value = context.get("value", error["input"])
                expectation = context["expectation"]
            else:
                key, value, expectation = ".".join(loc), error["input"], error["msg"]
            lines.append(self.line(key, value, expectation))
        return lines

    def line(self, key: str, value: Any, expectation: str) -> str:
        """Return ``<key> = <value> (from <origin>) <expectation>``, the form of every problem."""
        origin = self.origins.get(key, "")
        if origin == _DERIVED:
            return (
                f"{key} = {value!r} (derived from name/account_id/region) {expectation}; set {key}"
            )
        note = f" (from {origin})" if origin else ""
        return f"{key} = {value!r}{note} {expectation}"


def _derived_keys() -> list[str]:
    return list(derived_defaults("n", "r", "a"))


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.75
