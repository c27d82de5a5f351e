from __future__ import annotations

import pytest
from mask_r_cnn.engine import EpochBatchSampler, LoopState, learning_rate, run_progress
from mask_r_cnn.hyperparams import TrainConfig


def test_order_depends_only_on_seed_and_epoch() -> None:
    a = list(EpochBatchSampler(10, 3, shuffle=True, seed=1, epoch=0))
    b = list(EpochBatchSampler(10, 3, shuffle=True, seed=1, epoch=0))
    c = list(EpochBatchSampler(10, 3, shuffle=True, seed=1, epoch=1))
    assert a == b != c
    assert sorted(i for batch in a for i in batch) == list(range(10))
    assert [len(batch) for batch in a] == [3, 3, 3, 1]


def test_resume_skips_the_batches_already_trained() -> None:
    full = list(EpochBatchSampler(10, 2, shuffle=True, seed=0, epoch=2))
    rest = EpochBatchSampler(10, 2, shuffle=True, seed=0, epoch=2, start_batch=3)
    assert list(rest) == full[3:]
    assert len(rest) == 2 and rest.total == 5


def test_ranks_get_disjoint_equal_shards() -> None:
    shards = [
        [
            i
            for b in EpochBatchSampler(7, 2, shuffle=True, seed=0, epoch=0, rank=r, world_size=2)
            for i in b
        ]
        for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == 4  # padded to a multiple of the world size
    assert set(shards[0]) | set(shards[1]) == set(range(7))


def test_learning_rate_warms_up_then_steps_down() -> None:
    config = TrainConfig(lr=0.01, warmup_steps=10, lr_steps=(2,), lr_gamma=0.1)
    assert learning_rate(config, 0, 0, 1) == pytest.approx(0.01 * 0.001)
    assert learning_rate(config, 5, 0, 1) < learning_rate(config, 9, 0, 1) < 0.01
    assert learning_rate(config, 10, 1, 1) == pytest.approx(0.01)
    assert learning_rate(config, 50, 2, 1) == pytest.approx(0.001)


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_end_of_the_run() -> None:
    config = TrainConfig(lr=0.001, warmup_steps=10, lr_schedule="cosine")
    assert learning_rate(config, 0, 0, 1, progress=0.0) == pytest.approx(0.001 * 0.001)
    assert learning_rate(config, 10, 0, 1, progress=0.0) == pytest.approx(0.001)
    assert learning_rate(config, 50, 3, 1, progress=0.5) == pytest.approx(0.0005)
    assert learning_rate(config, 99, 9, 1, progress=1.0) == pytest.approx(0.0)


def test_wsd_schedule_holds_the_peak_then_decays_linearly_over_the_last_fraction() -> None:
    config = TrainConfig(lr=0.001, warmup_steps=10, lr_schedule="wsd", lr_decay_fraction=0.2)
    assert learning_rate(config, 0, 0, 1, progress=0.0) == pytest.approx(0.001 * 0.001)
    assert learning_rate(config, 10, 0, 1, progress=0.05) == pytest.approx(0.001)
    assert learning_rate(config, 500, 3, 1, progress=0.8) == pytest.approx(0.001)
    assert learning_rate(config, 900, 4, 1, progress=0.9) == pytest.approx(0.0005)
    assert learning_rate(config, 999, 4, 1, progress=1.0) == pytest.approx(0.0)


def test_run_progress_is_the_furthest_of_steps_step_cap_and_time_budget() -> None:
    config = TrainConfig(max_steps=200, max_seconds=60.0)
    state = LoopState(global_step=50, seconds=45.0)
    assert run_progress(config, state, total_steps=1000) == pytest.approx(0.75)  # the budget
    assert run_progress(TrainConfig(max_steps=100), state, 1000) == pytest.approx(0.5)
    assert run_progress(TrainConfig(), state, total_steps=None) == 0.0
    assert run_progress(TrainConfig(max_seconds=10.0), state, None) == 1.0
