"""The salience table (NLP4Neuro Sec. 4.4, Fig. 4-5): per fish, which regions hold the most
salient neurons, Pt vs Hb tests, hemisphere asymmetry of the signed salience, and, for
synthetic fish, precision@k of the planted drivers.

Per fish, salience maps of the runs are averaged neuron-wise first (a neuron's global
salience G(n), rad per z-unit), then:

- ``top_k_<region>``: how many of the k most salient neurons lie in each region, and
  ``mean_G_top_k_<region>``: their mean G (n/a when none);
- ``mean_G_<region>``: mean G over all neurons of the region;
- Pt vs Hb within the fish: Student's two-sample t-test (two-sided, equal variances) of G
  over the neurons of the two regions;
- Pt vs Hb across fish: Student's paired t-test (two-sided) of the per-fish region means
  (pairs = fish; not computable with fewer than 2 fish);
- Pt vs Hb of the top-k neurons across fish, the paper's test (Sec. 4.4, Fig. 4c: "the mean
  salience of top neurons in the Pt is greater than in the Hb across fish", Student's
  t-test): G of every fish's top-k neurons in Pt vs in Hb, pooled over fish (n = neurons);
  beside it the fish-level version, a paired t-test of the per-fish means of the top-k
  neurons in each region (n = fish);
- ablation (paper App. A.13): per fish, mean over runs of the test RMSE with the activity of
  the top-k salient neurons replaced by random other neurons, and with k random neurons
  replaced (:func:`pipeline.salience.job.replacement_ablation`);
- hemisphere asymmetry: the midline is estimated as the median x of the fish's neurons;
  ``signed_top_k_low_x`` / ``signed_top_k_high_x`` are the mean signed tail-sum salience of
  the top-k neurons on either side (positive: activity pushes the tail to positive angles);
  across fish, a paired t-test of the two sides;
- ``precision_at_k`` (mean over runs) and ``chance_at_k`` where the synthetic truth is known.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import h5py
import numpy as np
import pandas as pd
from scipy import stats

from pipeline.provenance import code_version
from pipeline.report.tables import (
    Provenance,
    Table,
    format_p_value,
    format_value,
    write_table,
)
from pipeline.salience.ranking import top_k
from pipeline.stats.hypothesis import HypothesisTestResult

STUDENT = "Student's t-test (two-sided)"
ABLATION = ("ablation_rmse_intact", "ablation_rmse_top_k", "ablation_rmse_random_k")
PAIRED_T = "Student's paired t-test (two-sided, pairs = fish)"


@dataclass(frozen=True)
class FishSalience:
    """One fish's run-averaged salience (neurons of its neural file, in its order)."""

    fish: str
    global_salience: np.ndarray  # (neurons,) G averaged over runs
    signed_tail_sum: np.ndarray  # (neurons,)
    position_um: np.ndarray  # (neurons, 3)
    region: np.ndarray  # (neurons,) str
    precision_at_k: float  # mean over runs (NaN without truth)
    chance_at_k: float
    n_runs: int
    ablation: dict  # ablation_rmse_intact/_top_k/_random_k (rad), mean over runs (NaN in older files)


def read_fish_salience(fish: str, paths: Sequence[str | os.PathLike]) -> FishSalience:
    """Average the salience files of one fish's runs."""
    glob, signed, precision, ablation = [], [], [], []
    for path in paths:
        with h5py.File(path, "r") as f:
            ablation.append([float(f.attrs.get(name, math.nan)) for name in ABLATION])
            glob.append(f["salience/global"][()])
            signed.append(f["salience/signed_tail_sum"][()])
            precision.append(float(f.attrs["precision_at_k"]))
            chance = float(f.attrs["chance_at_k"])
            position, region = f["neurons/position_um"][()], f["neurons/region"].asstr()[()]
    return FishSalience(fish, np.mean(glob, axis=0), np.mean(signed, axis=0), position, region,
                        float(np.mean(precision)), chance, len(paths), dict(zip(ABLATION, np.mean(ablation, axis=0))))


def student_t(a: np.ndarray, b: np.ndarray) -> HypothesisTestResult:
    if a.size < 2 or b.size < 2:
        return HypothesisTestResult(STUDENT, a.size, b.size, not_computable_reason=f"not computable: n = {a.size} vs {b.size}")
    result = stats.ttest_ind(a, b, equal_var=True)
    return HypothesisTestResult(STUDENT, a.size, b.size, float(result.statistic), float(result.pvalue))


def paired_t(a: np.ndarray, b: np.ndarray) -> HypothesisTestResult:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return HypothesisTestResult(PAIRED_T, a.size, b.size, not_computable_reason=f"not computable: {a.size} fish (needs >= 2)")
    if np.allclose(a - b, (a - b)[0]):
        return HypothesisTestResult(PAIRED_T, a.size, b.size, not_computable_reason="not computable: constant differences")
    result = stats.ttest_rel(a, b)
    return HypothesisTestResult(PAIRED_T, a.size, b.size, float(result.statistic), float(result.pvalue))


def _result_text(result: HypothesisTestResult) -> str:
    if not result.computable:
        return result.not_computable_reason
    p_text = format_p_value(result.p_value)
    return f"t = {result.statistic:.2f}, p {p_text if p_text.startswith('<') else '= ' + p_text}"


def salience_table(fish: Sequence[FishSalience], k: int, model: str, regions: Sequence[str] = ("Pt", "nMLF", "Hb")) -> Table:
    """The salience table of one model over fish (see module docstring)."""
    rows, top_by_region = [], {}
    for entry in fish:
        ranked = top_k(entry.global_salience, k)
        row: dict = {"fish": entry.fish, "n_runs": entry.n_runs, "n_neurons": entry.global_salience.size}
        for region in regions:
            in_region = entry.region == region
            top = ranked[in_region[ranked]]
            row[f"top_k_{region}"] = int(top.size)
            row[f"mean_G_top_k_{region}"] = float(entry.global_salience[top].mean()) if top.size else math.nan
            row[f"mean_G_{region}"] = float(entry.global_salience[in_region].mean()) if in_region.any() else math.nan
        pt_hb = student_t(entry.global_salience[entry.region == "Pt"], entry.global_salience[entry.region == "Hb"])
        row.update(t_Pt_vs_Hb=pt_hb.statistic, p_Pt_vs_Hb=pt_hb.p_value, test_Pt_vs_Hb=_result_text(pt_hb))
        midline = float(np.median(entry.position_um[:, 0]))
        low_x = entry.position_um[ranked, 0] < midline
        signed = entry.signed_tail_sum[ranked]
        row["signed_top_k_low_x"] = float(signed[low_x].mean()) if low_x.any() else math.nan
        row["signed_top_k_high_x"] = float(signed[~low_x].mean()) if (~low_x).any() else math.nan
        row.update(precision_at_k=entry.precision_at_k, chance_at_k=entry.chance_at_k, **entry.ablation)
        rows.append(row)
        for region in ("Pt", "Hb"):
            top_by_region.setdefault(region, []).append(entry.global_salience[ranked[entry.region[ranked] == region]])
    data = pd.DataFrame(rows)
    top_pooled = student_t(np.concatenate(top_by_region["Pt"]), np.concatenate(top_by_region["Hb"]))
    top_fish = paired_t(data["mean_G_top_k_Pt"].to_numpy(float), data["mean_G_top_k_Hb"].to_numpy(float))
    across_regions = paired_t(data["mean_G_Pt"].to_numpy(float), data["mean_G_Hb"].to_numpy(float))
    across_sides = paired_t(data["signed_top_k_low_x"].to_numpy(float), data["signed_top_k_high_x"].to_numpy(float))
    display = pd.DataFrame({
        "fish": data["fish"],
        "runs": data["n_runs"],
        **{f"top-{k} in {r}": data[f"top_k_{r}"] for r in regions},
        **{f"mean G {r}": data[f"mean_G_{r}"].map(lambda v: format_value(v, 4)) for r in regions},
        "Pt vs Hb (neurons)": data["test_Pt_vs_Hb"],
        "signed, x<midline": data["signed_top_k_low_x"].map(lambda v: format_value(v, 4)),
        "signed, x>midline": data["signed_top_k_high_x"].map(lambda v: format_value(v, 4)),
        f"precision@{k} (chance)": [f"{format_value(p, 2)} ({format_value(c, 2)})"
                                    for p, c in zip(data["precision_at_k"], data["chance_at_k"])],
        "test RMSE intact / top-k / random-k replaced": [
            " / ".join(format_value(v, 4) for v in values)
            for values in data[list(ABLATION)].itertuples(index=False)],
    })
    notes = [
        "G(n): global input-gradient salience (paper Eq. 1, 21): |d(window prediction of each tail component)/d(z-scored "
        "activity)| summed over components, averaged over the windows containing each frame and over the frames of the "
        "split; rad per z-unit; averaged over runs per neuron.",
        f"top-{k} in <region>: number of the {k} most salient neurons in the region; mean G <region>: over all its neurons.",
        f"Pt vs Hb (neurons): {STUDENT} of G over the neurons of the two regions within the fish.",
        f"Pt vs Hb across fish: {PAIRED_T} on the per-fish mean G: {_result_text(across_regions)}.",
        "signed: mean signed salience of the tail sum of the top-k neurons on each side of the midline (median x of "
        f"the fish's neurons); across fish, {PAIRED_T}: {_result_text(across_sides)}.",
        f"Pt vs Hb, top-{k} neurons across fish (the paper's test, Fig. 4c): {STUDENT} of G of every fish's top-{k} "
        f"neurons in Pt vs in Hb, pooled (n = neurons): {_result_text(top_pooled)}; fish level, {PAIRED_T} of the "
        f"per-fish means of those neurons (n = fish): {_result_text(top_fish)}.",
        "Ablation (paper App. A.13): test RMSE (rad, Eq. 15) of the trained decoder with intact activity, with the "
        f"activity of its top-{k} salient neurons replaced by that of randomly drawn other neurons, and with {k} "
        "random neurons replaced the same way (each mean over 10 seeded draws, then over runs).",
        f"precision@{k}: fraction of the top-{k} neurons that are planted driver neurons (synthetic fish only; "
        "chance = drivers / neurons); n/a for real fish.",
    ]
    return Table(title=f"Salience of {model} neurons by region (top-{k})", data=data, display=display, notes=notes)


def salience_summary_stage(files_by_fish: dict[str, Sequence[str | os.PathLike]], model: str, k: int, frame: int,
                           table_paths: dict[str, str], figure_paths: dict[str, tuple[str, str]],
                           config_hash: str) -> None:
    """Read every salience file of one model (per fish, its runs), write the salience table
    (CSV, LaTeX, Markdown) and Figs. 4-6."""
    from pipeline.salience.figures import write_salience_figures

    fish = [read_fish_salience(name, paths) for name, paths in files_by_fish.items()]
    n_files = sum(len(paths) for paths in files_by_fish.values())
    write_table(salience_table(fish, k, model), table_paths,
                Provenance(config_hash, code_version(), f"{n_files} salience files of {len(fish)} fish"))
    write_salience_figures(fish, [paths[0] for paths in files_by_fish.values()], k, model, frame, figure_paths)
