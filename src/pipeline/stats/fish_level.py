"""Statistics with the fish as the unit (beside the paper's pooled tests).

The runs of one fish share its recording and its test block, so the (fish, run) jobs of a
cell are not independent replicates: pooling 10 runs x 5 fish as n = 50 (the paper's
Mann-Whitney U, kept in the tables as the "paper protocol" columns) understates the
uncertainty whenever an arm's advantage differs between fish. The fish-level columns:

- per-fish mean: mean over the fish's runs of the cell; the cell's ``fish_mean`` is the mean
  of those per-fish means (each fish weighs the same);
- 95 % CI by bootstrap over fish: fish resampled with replacement ``resamples`` times (a
  seeded ``numpy.random.Generator``), the statistic recomputed on the resampled per-fish
  means, percentile interval (2.5 %, 97.5 %); undefined (NaN) with fewer than 2 fish;
- linear mixed model (``statsmodels`` MixedLM, REML) of one comparison (arm vs reference)::

      value ~ 1 + arm + (1 | fish) + (1 | fish:arm)

  the arm as fixed effect, a random intercept per fish and a variance component per
  (fish, arm) cell, so the effect is judged against its between-fish variation, not
  against the run-to-run noise. The fixed effect (arm - reference, in the metric's units)
  is tested with its Wald t statistic on ``n_fish - 1`` degrees of freedom (the effect is
  estimated between fish; with balanced cells this equals a paired t-test on the per-fish
  means). Not computable with fewer than 2 fish holding both arms, or when every value is
  equal.

Multiple-comparison correction: ``statsmodels.stats.multitest.multipletests`` (Holm) in
:func:`pipeline.stats.hypothesis.holm_adjust`.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.stats.hypothesis import HypothesisTestResult

MIXED_MODEL = "linear mixed model (fixed: arm; random: fish, fish x arm; Wald t, n_fish - 1 df)"
CI_LEVEL = 0.95


def per_fish_means(values: Sequence[float], fish: Sequence[str]) -> pd.Series:
    """Mean of ``values`` per fish (index: fish, sorted)."""
    return pd.Series(np.asarray(values, dtype=float)).groupby(np.asarray(fish)).mean()


def bootstrap_ci(per_fish: Sequence[float], resamples: int, seed: int,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over fish of ``per_fish`` (one value per fish),
    resampling fish with replacement. NaN with fewer than 2 fish."""
    values = np.asarray(per_fish, dtype=float)
    if values.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def mixed_model_test(values: Sequence[float], is_arm: Sequence[bool], fish: Sequence[str]) -> HypothesisTestResult:
    """Effect of the arm (``is_arm`` True) against the reference (False) by the linear mixed
    model of the module docstring. ``statistic`` is the Wald t, ``effect`` the fixed effect
    (arm - reference); ``n_a``/``n_b`` count the fish with both arms."""
    frame = pd.DataFrame({"value": np.asarray(values, dtype=float), "arm": np.asarray(is_arm, dtype=float),
                          "fish": np.asarray(fish).astype(str)})
    if not np.all(np.isfinite(frame["value"])):
        raise ValueError(f"non-finite values in {frame['value'].tolist()}")
    both = frame.groupby("fish")["arm"].nunique()
    frame = frame[frame["fish"].isin(both[both == 2].index)]
    n_fish = int(frame["fish"].nunique())
    if n_fish < 2:
        return HypothesisTestResult(MIXED_MODEL, n_fish, n_fish,
                                    not_computable_reason=f"not computable: {n_fish} fish with both arms (needs >= 2)")
    if frame["value"].nunique() == 1:
        return HypothesisTestResult(MIXED_MODEL, n_fish, n_fish,
                                    not_computable_reason="not computable: all values tied")
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    frame = frame.sort_values("fish", kind="stable")
    arm, fish_ids = frame["arm"].to_numpy(), frame["fish"].to_numpy()
    exog = np.column_stack([np.ones_like(arm), arm])  # intercept (reference arm), arm effect
    # variance component "fish x arm": per fish, one indicator column per arm
    cells = [np.column_stack([arm[fish_ids == f] == 0, arm[fish_ids == f] == 1]).astype(float)
             for f in pd.unique(fish_ids)]
    model = MixedLM(frame["value"].to_numpy(), exog, groups=fish_ids, exog_re=np.ones((len(frame), 1)),
                    exog_vc=VCSpec(["fish_arm"], [[["reference", "arm"]] * len(cells)], [cells]))
    with warnings.catch_warnings():
        # a variance component estimated at the boundary (0) is a valid REML fit, not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*(boundary|Hessian|singular).*")
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 in the Hessian of a zero variance component
        fit = model.fit(reml=True, method=["lbfgs", "powell"])
    effect, se = float(fit.fe_params[1]), float(fit.bse_fe[1])
    if not (math.isfinite(se) and se > 0):
        return HypothesisTestResult(MIXED_MODEL, n_fish, n_fish, effect=effect,
                                    not_computable_reason="not computable: the effect's standard error is 0 "
                                                          "or undefined")
    t = effect / se
    p = float(2 * stats.t.sf(abs(t), df=n_fish - 1))
    return HypothesisTestResult(MIXED_MODEL, n_fish, n_fish, statistic=t, p_value=p, effect=effect)
