from __future__ import annotations

import pytest

from bench.__main__ import BENCHMARKS, main


def test_list_names_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(BENCHMARKS)


def test_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    assert "unknown benchmark 'nope'; choose from startup" in capsys.readouterr().err


def test_bad_repeats_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--repeats", "0", "startup"])
    assert "--repeats 0 must be at least 1" in capsys.readouterr().err
