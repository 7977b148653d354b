"""RewardConfig validation, the registry's names and weights, and the batch contract."""

from __future__ import annotations

import pytest

from rewards import BatchError, RewardConfig, default_reward_names, get_reward_funcs, get_reward_weights, parse_batch


@pytest.mark.parametrize(
    "field, value",
    [
        ("discriminator_variant", "nice"), ("stage_scope", "all"), ("num_stages", 0),
        ("max_mutants", -1), ("repetition_threshold", 1.0), ("hack_penalty", 0.5),
        ("test_timeout", 0), ("weighted_valid", float("nan")), ("time_floor", -1.0),
            ("verdict_runs", 0), ("time_factor", 0.5), ("too_slow_share", 0.0),
        ("weights", {"format": "heavy"}), ("repetition_ngram", 1), ("cache_size", True),
    ],
)  # fmt: skip
def test_bad_config_values_name_their_field(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        RewardConfig(**{field: value})


def test_names_resolve_and_weights_follow_config():
    cfg = RewardConfig(discriminator_variant="weighted", weights={"format": 0.1, "discriminator_weighted": 2.0})
    names = default_reward_names(cfg)
    assert names == ["generator_pass_rate", "discriminator_weighted", "format", "repetition", "hack_penalty"]
    assert get_reward_weights(["discriminator", "format", "hack_penalty"], cfg) == [2.0, 0.1, 1.0]
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward_funcs(["pass_rate"], cfg)
    with pytest.raises(ValueError, match="twice"):
        get_reward_funcs(["discriminator", "discriminator_weighted"], cfg)


def row(**changes):
    base = {
        "role": "generator", "train_stage": 2, "stage_texts": ["a", "b"], "final_code": "",
        "tests_by_stage": [["assert f(1) == 1"]], "disc_rejections": {}, "task_id": 7,
        "entry_point": "f", "reference_solution": "def f(x): return x", "tests": "assert f(2) == 2",
        "test_setup": None,
    }  # fmt: skip
    base.update(changes)
    return {k: [v] for k, v in base.items()}


def test_batch_rows_are_normalised():
    (sample,) = parse_batch(row(), num_stages=5)
    assert sample.stage_texts == ("a", "b", "", "", "")
    assert sample.tests_by_stage == (("assert f(1) == 1",), (), (), (), ())
    assert sample.tests == ("assert f(2) == 2",) and sample.test_setup == "" and sample.task_id == "7"
    assert sample.stages_in_scope("cumulative") == (1, 2) and sample.stages_in_scope("current") == (2,)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"role": "judge"}, "role"), ({"train_stage": 6}, "train_stage"), ({"train_stage": True}, "train_stage"),
        ({"tests_by_stage": [[1]]}, "tests_by_stage"), ({"disc_rejections": {"x": -1}}, "disc_rejections"),
        ({"final_code": None}, "final_code"), ({"entry_point": "not an id"}, "entry_point"),
        ({"stage_texts": ["a"] * 6}, "more than 5"),
    ],
)  # fmt: skip
def test_batch_contract_violations_raise_clearly(changes, message):
    with pytest.raises(BatchError, match=message):
        parse_batch(row(**changes), num_stages=5)


def test_missing_or_ragged_columns_raise():
    columns = row()
    del columns["tests"]
    with pytest.raises(BatchError, match="tests"):
        parse_batch(columns, num_stages=5)
    columns = row()
    columns["role"] = ["generator", "generator"]
    with pytest.raises(BatchError, match="different lengths"):
        parse_batch(columns, num_stages=5)
