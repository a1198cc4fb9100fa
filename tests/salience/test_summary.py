"""Salience table: region counts, Student's t-tests against scipy, not-computable cases,
written in three formats with figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.salience.summary import (
    FishSalience,
    paired_t,
    salience_summary_stage,
    salience_table,
)


def fish_salience(name, seed):
    rng = np.random.default_rng(seed)
    region = np.array(["Pt"] * 10 + ["Hb"] * 10 + ["nMLF"] * 5)
    salience = np.where(region == "Pt", 2.0, 1.0) + 0.1 * rng.random(25)
    position = np.column_stack([rng.uniform(0, 100, 25), rng.uniform(0, 100, 25), np.zeros(25)])
    signed = np.where(position[:, 0] < np.median(position[:, 0]), -1.0, 1.0)
    ablation = {"ablation_rmse_intact": 0.04, "ablation_rmse_top_k": 0.05, "ablation_rmse_random_k": 0.041}
    return FishSalience(name, salience, signed, position, region, 0.5, 0.2, 2, ablation)


def test_table_counts_regions_and_tests_match_scipy():
    fish = [fish_salience("a", 0), fish_salience("b", 1), fish_salience("c", 2)]
    table = salience_table(fish, k=10, model="lstm")
    row = table.data.iloc[0]
    assert row["top_k_Pt"] == 10 and row["top_k_Hb"] == 0 and np.isnan(row["mean_G_top_k_Hb"])
    expected = stats.ttest_ind(fish[0].global_salience[:10], fish[0].global_salience[10:20])
    assert row["t_Pt_vs_Hb"] == pytest.approx(expected.statistic)
    assert row["p_Pt_vs_Hb"] == pytest.approx(expected.pvalue)
    across = stats.ttest_rel(table.data["mean_G_Pt"], table.data["mean_G_Hb"])
    assert any(f"t = {across.statistic:.2f}" in note for note in table.notes)
    assert (table.data["signed_top_k_low_x"] < 0).all() and (table.data["signed_top_k_high_x"] > 0).all()


def test_top_k_pt_vs_hb_across_fish_is_the_papers_pooled_t_test():
    fish = [fish_salience(name, seed) for name, seed in (("a", 0), ("b", 1), ("c", 2))]
    table = salience_table(fish, k=15, model="lstm")  # top 15 = the 10 Pt neurons + 5 others
    pt, hb = [], []
    for entry in fish:
        ranked = np.argsort(-entry.global_salience, kind="stable")[:15]
        pt.append(entry.global_salience[ranked[entry.region[ranked] == "Pt"]])
        hb.append(entry.global_salience[ranked[entry.region[ranked] == "Hb"]])
    expected = stats.ttest_ind(np.concatenate(pt), np.concatenate(hb))
    note = next(n for n in table.notes if n.startswith("Pt vs Hb, top-15 neurons across fish"))
    assert f"t = {expected.statistic:.2f}" in note and "n = neurons" in note and "n = fish" in note
    assert "0.0400 / 0.0500 / 0.0410" in table.display["test RMSE intact / top-k / random-k replaced"].iloc[0]


def test_one_fish_is_not_computable_across_fish():
    table = salience_table([fish_salience("a", 0)], k=5, model="lstm")
    assert any("Pt vs Hb across fish" in n and "not computable: 1 fish" in n for n in table.notes)
    assert not paired_t(np.array([1.0]), np.array([2.0])).computable


def test_stage_writes_table_and_figures(tmp_path):
    import h5py

    from pipeline.io.h5 import write_dataset

    paths = {}
    for name, seed in (("a", 0), ("b", 1)):
        entry = fish_salience(name, seed)
        path = tmp_path / f"{name}.h5"
        with h5py.File(path, "w") as f:
            f.attrs.update(precision_at_k=0.5, chance_at_k=0.2, fish=name)
            write_dataset(f, "salience/global", entry.global_salience, "u", "")
            write_dataset(f, "salience/signed_tail_sum", entry.signed_tail_sum, "u", "")
            write_dataset(f, "salience/moment", np.tile(entry.global_salience, (30, 1)), "u", "")
            write_dataset(f, "neurons/position_um", entry.position_um, "um", "")
            write_dataset(f, "neurons/region", entry.region, "label", "")
            write_dataset(f, "frames/tail_sum_rad", np.sin(np.arange(30)), "rad", "")
            write_dataset(f, "frames/predicted_tail_sum_rad", 0.8 * np.sin(np.arange(30)), "rad", "")
            for shift, condition in enumerate(("intact", "top_k_replaced", "random_k_replaced")):
                write_dataset(f, f"pca/{condition}", np.random.default_rng(seed).normal(shift, 1, (40, 2)), "a.u.", "")
            write_dataset(f, "pca/explained_variance_ratio", np.array([0.6, 0.2]), "1", "")
        paths[name] = [path]
    tables = {fmt: tmp_path / f"t.{fmt}" for fmt in ("csv", "tex", "md")}
    figures = {key: (tmp_path / f"{key}.pdf", tmp_path / f"{key}.png") for key in ("map", "asymmetry", "moment", "pca")}
    salience_summary_stage(paths, "lstm", 5, 10, tables, figures, "hash123")
    data = pd.read_csv(tables["csv"], comment="#")
    assert list(data["fish"]) == ["a", "b"]
    assert "hash123" in tables["md"].read_text() and "\\begin{table}" in tables["tex"].read_text()
    for pdf, png in figures.values():
        assert pdf.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
