"""The checkout's folders are found through the installed container package, never guessed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import workflow
from workflow import checkout


def test_the_container_folder_holds_the_container_package_and_its_dockerfile() -> None:
    container = checkout.container_dir()
    spec = importlib.util.find_spec("mask_r_cnn")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve().parent == container / "mask_r_cnn"
    assert (container / "Dockerfile").is_file()
    assert (checkout.checkout_root() / "scripts" / "build-image.sh").is_file()
    assert sorted(checkout.notebooks_dir().glob("[0-9][0-9]_*.py"))


def test_a_missing_container_package_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(checkout.CheckoutError, match="mask_r_cnn package is not installed"):
        checkout.container_dir()


def test_no_module_locates_the_checkout_from_its_own_file() -> None:
    package = Path(workflow.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"__file__\)?\.resolve\(\)\.parents\[2\]", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
