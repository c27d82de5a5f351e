"""``python -m workflow notebooks``: parameters, selection, failure messages, kernel check."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.checkout import notebooks_dir
from workflow.errors import ConfigError
from workflow.notebook import execute, sources

REPO_NOTEBOOKS = notebooks_dir()


def test_parse_value_types_like_papermill_plus_json():
    assert sources.parse_value("True") is True and sources.parse_value("False") is False
    assert sources.parse_value("None") is None
    assert sources.parse_value("3") == 3 and sources.parse_value("0.5") == 0.5
    assert sources.parse_value('{"gate.threshold": 0.0}') == {"gate.threshold": 0.0}
    assert sources.parse_value("{'a': 1}") == {"a": 1}
    assert sources.parse_value("[1, 2]") == [1, 2]
    assert sources.parse_value("local") == "local"
    with pytest.raises(ConfigError, match="looks like a mapping or list"):
        sources.parse_value("{not valid")


def test_only_selects_and_names_unknown_notebooks():
    picked = sources.find_notebooks(REPO_NOTEBOOKS, ["03_evaluate", "01_data.py"])
    assert [p.stem for p in picked] == ["01_data", "03_evaluate"]
    with pytest.raises(ConfigError, match="--only 09_nope is not a notebook"):
        sources.find_notebooks(REPO_NOTEBOOKS, ["09_nope"])


def test_a_folder_without_notebooks_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="holds no notebooks"):
        sources.find_notebooks(tmp_path, [])


def test_kernel_check_accepts_this_environment_and_refuses_another(monkeypatch):
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    execute.check_kernel()  # the python3 kernel of this environment
    other = KernelSpec(argv=["/opt/other/bin/python", "-m", "ipykernel_launcher"],
                       resource_dir="/opt/other/kernels/python3")  # fmt: skip
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: other)
    with pytest.raises(sources.NotebookRunError, match="runs /opt/other/bin/python, not this"):
        execute.check_kernel()


def test_cell_line_finds_the_cell_start():
    path = REPO_NOTEBOOKS / "01_data.py"
    line = execute.cell_line(path, "splits = nb.dataset_splits(session, data)\nx")
    assert line is not None
    assert Path(path).read_text().splitlines()[line - 1].startswith("splits = ")
    assert execute.cell_line(path, "") is None
