"""Trial filters on REAL trial tables, label encodings and the split."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.ibl.trials import (
    EXCLUSION_REASONS,
    TrialFilter,
    encode_block,
    encode_choice,
    select_trials,
    split_trials,
)

from helpers import require_real_ibl_fixtures

# The real tables have stimOn, response and feedback-type columns but no firstMovement:
# filter on the response time (response_times - stimOn_times) instead.
REAL_RULE = TrialFilter(
    required_events=("stimOn_times", "response_times", "choice", "probabilityLeft", "feedbackType"),
    reaction_time_event="response_times", min_reaction_time_s=0.08, max_reaction_time_s=2.0,
)


def load_real_trials(date: str) -> dict[str, np.ndarray]:
    folder = require_real_ibl_fixtures() / "trials" / date
    return {p.name.split(".")[1]: np.load(p) for p in folder.glob("trials.*.npy")}


def brute_force_keep(trials, rule):
    """One trial at a time, written independently of select_trials."""
    keep = []
    for i in range(len(trials["choice"])):
        values = {name: trials[name][i] for name in trials}
        if any(np.isnan(values[e]) for e in rule.required_events):
            keep.append(False)
            continue
        rt = values[rule.reaction_time_event] - values["stimOn_times"]
        keep.append(
            values["choice"] != 0
            and rule.min_reaction_time_s <= rt <= rule.max_reaction_time_s
            and any(abs(values["probabilityLeft"] - p) < 1e-9 for p in (0.2, 0.5, 0.8))
        )
    return np.array(keep)


@pytest.mark.parametrize("date", ["2020-08-26", "2020-09-04"])
def test_real_trial_tables_pass_the_filters_with_the_expected_counts(date):
    trials = load_real_trials(date)
    n = len(trials["choice"])
    keep, excluded = select_trials(trials, REAL_RULE, "stimOn_times", np.ones(n, bool))
    np.testing.assert_array_equal(keep, brute_force_keep(trials, REAL_RULE))
    assert list(excluded) == list(EXCLUSION_REASONS)
    assert sum(excluded.values()) + keep.sum() == n
    assert excluded["no_choice"] == int(np.sum(trials["choice"] == 0))
    assert 0.5 * n < keep.sum() < n  # real sessions lose some trials, not most


def test_first_table_counts():
    # 2020-08-26: 752 trials, 1 no-go (choice 0); values read off the fixture.
    trials = load_real_trials("2020-08-26")
    keep, excluded = select_trials(trials, REAL_RULE, "stimOn_times", np.ones(752, bool))
    assert excluded["no_choice"] == 1 and excluded["missing_event"] == 0
    rt = trials["response_times"] - trials["stimOn_times"]
    expected_rt = int(np.sum(((rt < 0.08) | (rt > 2.0)) & (trials["choice"] != 0)))
    assert excluded["reaction_time_outlier"] == expected_rt
    # training-session priors such as 0.3/0.4/0.6 are not blocks
    assert excluded["unknown_block"] == int(np.sum(~np.isin(np.round(trials["probabilityLeft"], 6), [0.2, 0.5, 0.8])
                                                   & (trials["choice"] != 0) & (rt >= 0.08) & (rt <= 2.0)))


def test_nan_alignment_event_excludes_the_trial():
    trials = {"stimOn_times": np.array([1.0, np.nan]), "choice": np.array([1.0, 1.0]),
              "probabilityLeft": np.array([0.5, 0.5]), "firstMovement_times": np.array([1.2, 1.2]),
              "goCue_times": np.array([np.nan, 5.0])}
    rule = TrialFilter(required_events=())
    keep, excluded = select_trials(trials, rule, "goCue_times", np.ones(2, bool))
    assert keep.tolist() == [False, False] and excluded["missing_event"] == 2


def test_encodings():
    assert encode_choice(np.array([-1.0, 1.0, 1.0])).tolist() == [0, 1, 1]
    assert encode_block(np.array([0.2, 0.5, 0.8, 0.8000000001])).tolist() == [0, 1, 2, 2]
    with pytest.raises(ValueError):
        encode_choice(np.array([0.0]))
    with pytest.raises(ValueError):
        encode_block(np.array([0.6]))


def test_split_is_seeded_disjoint_and_complete():
    a = split_trials(101, (0.7, 0.1, 0.2), seed=5)
    b = split_trials(101, (0.7, 0.1, 0.2), seed=5)
    c = split_trials(101, (0.7, 0.1, 0.2), seed=6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
    assert [len(a[k]) for k in ("train", "val", "test")] == [71, 10, 20]
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(101))
    assert min(len(v) for v in split_trials(3, (0.7, 0.1, 0.2), seed=1).values()) == 1
