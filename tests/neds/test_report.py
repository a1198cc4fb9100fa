"""Tables and the confusion-matrix figure from the NEDS job records."""

import numpy as np
import pandas as pd

from pipeline.neds.region import classify_regions, region_labels
from pipeline.neds.config import RegionParams
from pipeline.neds.report import comparison_table, per_variable_table, plot_confusion, region_table, write_table

DECODING = {"choice_accuracy": 0.6, "block_accuracy": 0.5, "wheel_speed_r2": 0.4, "whisker_motion_energy_r2": 0.3}
ENCODING = {"bps": 0.1, "bps_choice": 0.01, "bps_block": 0.0, "bps_wheel_speed": 0.05, "bps_whisker_motion_energy": 0.02}


def test_tables_have_one_row_per_session_and_method_and_means(tmp_path):
    baselines = [{"session": s, "chance": {**DECODING, "bps": -0.01}, "linear": {**ENCODING, **DECODING},
                  "rrr": {**ENCODING, **DECODING}} for s in ("a", "b")]
    models = [{"session": "a", "model": "neds_multimodal", "metrics": {**ENCODING, **DECODING, "bps": 0.2}},
              {"session": "b", "model": "neds_multimodal", "metrics": {**ENCODING, **DECODING, "bps": 0.4}},
              {"session": "a", "model": "neds_decoding", "metrics": DECODING}]
    table = comparison_table(models, baselines)
    mean = table[(table.session == "mean") & (table.method == "neds_multimodal")]
    assert np.isclose(float(mean.bps.iloc[0]), 0.3)
    assert np.isnan(table[(table.session == "a") & (table.method == "neds_decoding")].bps.iloc[0])
    per_variable = per_variable_table(models, baselines)
    assert "neds_decoding" not in set(per_variable.method)  # no encoding, no row
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md", "title")
    assert pd.read_csv(tmp_path / "t.csv").shape == table.shape
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.startswith("# title") and "| a | neds_decoding |  | 0.600 |" in markdown


def test_region_labels_and_classification_of_separable_embeddings(tmp_path):
    assert region_labels(np.array(["VISa2/3", "DG-mo", "CA1", "root"]), ("VISa", "DG", "CA1")).tolist() == \
        ["VISa", "DG", "CA1", ""]
    rng = np.random.default_rng(0)
    acronyms = np.repeat(["PO", "LP", "VISa5"], 20)
    embeddings = np.eye(3).repeat(20, axis=0) * 3 + 0.3 * rng.standard_normal((60, 3))
    result = classify_regions(embeddings, acronyms, RegionParams(), seed=0)
    assert result["accuracy"] == 1.0 and result["chance"] == 1 / 3 and result["classes"] == ["PO", "LP", "VISa"]
    assert np.trace(result["confusion"]) == 60
    few = classify_regions(embeddings[:8], acronyms[:8], RegionParams(), seed=0)
    assert few["accuracy"] is None and "fewer than 2 regions" in few["note"]
    region = {"neds_multimodal": result, "neds_tiny": few}
    assert region_table(region).shape[0] == 2
    plot_confusion(region, tmp_path / "c.pdf", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "c.pdf").stat().st_size > 1000
