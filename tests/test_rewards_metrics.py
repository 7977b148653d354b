"""Batch metrics of the rewards with hand-worked answers."""


def test_group_metrics_count_groups_by_solved_samples_and_spread():
    from rewards.metrics import group_metrics

    rates = [("a", 1.0), ("a", 1.0), ("a", 1.0),      # all solved: no spread
             ("b", 0.0), ("b", 0.5), ("b", 0.0),      # none solved, but a pass-rate spread
             ("c", 1.0), ("c", 0.0), ("c", None),     # one solved; the unknown rate is skipped
             ("d", 0.0), ("d", 0.0), ("d", 0.0)]      # none solved, no spread
    out = group_metrics(rates)
    assert out["generator/groups/mixed"] == 0.5
    assert [out[f"generator/groups/solved_{k}"] for k in range(4)] == [2.0, 1.0, 0.0, 1.0]
    assert group_metrics([]) == {} and group_metrics([("a", None)]) == {}
