from __future__ import annotations

from bench.profiling import (
    describe_profile,
    hot_functions,
    import_share,
    parse_collapsed,
    process_shares,
    top_self,
)

RAW = """\
thread (1): MainThread;main (bench/x.py:10);wait (threading.py:320);Condition.wait (threading.py:355) 50
thread (2): Thread-1;Thread.run (threading.py:975);eval (moto/a.py:5);parse (jsonpath_ng/parser.py:20) 30
thread (2): Thread-1;Thread.run (threading.py:975);eval (moto/a.py:5);step (workflow/local/engine.py:9) 10
thread (1): MainThread;<module> (x.py:1);_find_and_load (<frozen importlib._bootstrap>:1);exec (y.py:2) 40
garbage line
"""


def test_parse_collapsed_drops_thread_frames_and_bad_lines() -> None:
    stacks = parse_collapsed(RAW)
    assert len(stacks) == 4
    assert stacks[1] == (
        ["Thread.run (threading.py:975)", "eval (moto/a.py:5)", "parse (jsonpath_ng/parser.py:20)"],
        30,
    )


def test_hot_functions_skip_idle_and_import_samples() -> None:
    hot = hot_functions(parse_collapsed(RAW))
    shares = {h.where: round(h.inclusive, 2) for h in hot}
    assert shares["moto/a.py:eval"] == 1.0
    assert shares["workflow/local/engine.py:step"] == 0.25
    assert not any("Condition.wait" in w or "Thread.run" in w for w in shares)
    leaves = {h.where: round(h.self_share, 2) for h in top_self(parse_collapsed(RAW))}
    assert leaves == {"jsonpath_ng/parser.py:parse": 0.75, "workflow/local/engine.py:step": 0.25}


def test_describe_profile_without_samples() -> None:
    assert "no profile" in describe_profile(None)
    assert "jsonpath_ng/parser.py:parse 75% (self 75%)" in describe_profile(parse_collapsed(RAW))


SUBPROCESSES = """\
process 1:"python -c import a; import b";process 2:"python container/mask_r_cnn/train";fit (mask_r_cnn/train.py:1) 60
process 1:"python -c import a; import b";process 3:"python -m gunicorn --bind x";predict (mask_r_cnn/predictor.py:9) 30
process 1:"python -c import a; import b";main (workflow/cli.py:3);_find_and_load (<frozen importlib._bootstrap>:1) 10
"""


def test_process_shares_and_import_share() -> None:
    stacks = parse_collapsed(SUBPROCESSES)
    assert stacks[0][0][-1] == "fit (mask_r_cnn/train.py:1)"
    assert process_shares(stacks) == {"train": 0.6, "gunicorn": 0.3, "-c import": 0.1}
    assert "process" not in " ".join(h.where for h in top_self(stacks))
    assert import_share(stacks) == 0.1
    assert hot_functions(stacks)[0].where == "mask_r_cnn/train.py:fit"
