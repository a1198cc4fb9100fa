"""Trial selection, label encodings and the train/val/test split of an IBL session.

Filters follow the IBL Brain-Wide Map trial selection used by NEDS (seed 002, Sec. 4:
"We exclude trials in which mice exhibited reaction time outliers, as defined by the IBL
Brain-Wide Map"): trials with a missing (NaN) required event, no-go trials (choice 0),
reaction times (``firstMovement_times - stimOn_times``) outside [0.08, 2.0] s, plus trials
whose block prior is not one of 0.2/0.5/0.8 (training sessions) and trials whose window
is not covered by the wheel or camera recording. Each excluded trial is counted under the
first reason it meets, in the order of :data:`EXCLUSION_REASONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: block prior probabilityLeft -> class index stored in the binned file.
BLOCK_CLASSES = {0.2: 0, 0.5: 1, 0.8: 2}
#: Order in which exclusion reasons are checked and counted.
EXCLUSION_REASONS = (
    "missing_event", "no_choice", "reaction_time_outlier", "unknown_block", "outside_recording",
)


@dataclass(frozen=True)
class TrialFilter:
    """Which trials enter the binned file."""

    # trial attributes that must be finite (Brain-Wide Map: nan_exclude)
    required_events: tuple[str, ...] = (
        "stimOn_times", "firstMovement_times", "feedback_times", "choice", "probabilityLeft", "feedbackType",
    )
    exclude_no_choice: bool = True  # drop choice == 0 (no-go / timeout) trials
    reaction_time_event: str = "firstMovement_times"  # reaction time = this event - stimOn_times
    min_reaction_time_s: float = 0.08  # Brain-Wide Map min_rt
    max_reaction_time_s: float = 2.0  # Brain-Wide Map max_rt


def needed_events(rule: TrialFilter, align_event: str) -> tuple[str, ...]:
    """Trial attributes the filter and the alignment read; NaN in any excludes the trial."""
    return tuple(dict.fromkeys(
        (align_event, "stimOn_times", rule.reaction_time_event, "choice", "probabilityLeft", *rule.required_events)
    ))


def select_trials(
    trials: dict[str, np.ndarray], rule: TrialFilter, align_event: str, window_covered: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Return (keep mask (n_trials,) bool, excluded-trial count per reason).

    ``window_covered``: (n_trials,) bool, the trial's window lies inside the wheel and
    camera recordings (computed by the caller, which knows the window).
    """
    n = window_covered.shape[0]
    reasons = {
        "missing_event": ~np.all([np.isfinite(trials[e]) for e in needed_events(rule, align_event)], axis=0),
        "no_choice": (trials["choice"] == 0) if rule.exclude_no_choice else np.zeros(n, bool),
    }
    with np.errstate(invalid="ignore"):
        reaction_time = trials[rule.reaction_time_event] - trials["stimOn_times"]
        reasons["reaction_time_outlier"] = ~(
            (reaction_time >= rule.min_reaction_time_s) & (reaction_time <= rule.max_reaction_time_s)
        )
    reasons["unknown_block"] = ~np.any(
        [np.isclose(trials["probabilityLeft"], p) for p in BLOCK_CLASSES], axis=0
    )
    reasons["outside_recording"] = ~window_covered
    keep = np.ones(n, bool)
    counts = {}
    for name in EXCLUSION_REASONS:
        hit = reasons[name] & keep
        counts[name] = int(hit.sum())
        keep &= ~hit
    return keep, counts


def encode_choice(choice: np.ndarray) -> np.ndarray:
    """IBL choice -1 (counter-clockwise turn, correct for right stimuli) -> 0,
    +1 (clockwise, correct for left stimuli) -> 1. Other values raise ValueError."""
    if not np.all(np.isin(choice, (-1, 1))):
        raise ValueError(f"choice must be -1 or 1 after filtering, found {np.unique(choice)}")
    return (choice > 0).astype(np.int8)


def encode_block(probability_left: np.ndarray) -> np.ndarray:
    """probabilityLeft 0.2 / 0.5 / 0.8 -> classes 0 / 1 / 2 (:data:`BLOCK_CLASSES`)."""
    classes = np.full(probability_left.shape, -1, np.int8)
    for prior, label in BLOCK_CLASSES.items():
        classes[np.isclose(probability_left, prior)] = label
    if np.any(classes < 0):
        raise ValueError(f"probabilityLeft values outside {list(BLOCK_CLASSES)}: {np.unique(probability_left)}")
    return classes


def split_trials(n_trials: int, fractions: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Random split of trial positions 0..n-1 into train/val/test (sorted index arrays).

    Sizes: test = round(n * f_test), val = round(n * f_val), train = the rest; each split
    gets at least one trial when n >= 3. As in NEDS (seed 002, Sec. 5: 70/10/20 by trial).
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    n_val = int(round(n_trials * fractions[1]))
    n_test = int(round(n_trials * fractions[2]))
    if n_trials >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    order = np.random.default_rng(seed).permutation(n_trials)
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
