"""The folders of the source checkout the kit runs from, located through the installed packages.

The kit runs from a clone of its repository: local builds snapshot ``container/``, the image is
built by ``scripts/build-image.sh``, ``python -m workflow notebooks`` runs ``notebooks/``. The
container's code is the `mask_r_cnn` package, installed with the kit (``pyproject.toml`` maps it to
``container/mask_r_cnn``), so the folder that holds that package is ``container/`` and its parent
is the checkout. The package is found without importing it (no torch import, no side effect).
Every command that reads one of these folders also takes it as an option (``--notebooks``,
``container_dir=``), with these as defaults.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from workflow.errors import WorkflowError

CONTAINER_PACKAGE = "mask_r_cnn"


class CheckoutError(WorkflowError):
    """The checkout's folders cannot be located (the container package is not installed)."""


def container_dir() -> Path:
    """Return the checkout's ``container/`` folder: the folder holding the `mask_r_cnn` package.

    Raises:
        CheckoutError: When the package is not installed.
    """
    spec = importlib.util.find_spec(CONTAINER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckoutError(
            f"the {CONTAINER_PACKAGE} package is not installed, so the checkout's container/ "
            "folder cannot be found; install the kit from its checkout (pip install -e .)"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def checkout_root() -> Path:
    """Return the checkout: the folder that holds ``container/``, ``scripts/``, ``notebooks/``."""
    return container_dir().parent


def notebooks_dir() -> Path:
    """Return the checkout's ``notebooks/`` folder (the default of ``notebooks --notebooks``)."""
    return checkout_root() / "notebooks"


__all__ = ["CheckoutError", "checkout_root", "container_dir", "notebooks_dir"]
