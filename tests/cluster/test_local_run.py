"""The end-to-end run of the small CI configuration `.test/config`, every rule locally: the
session's finished local run (tests/cluster/conftest.py), which the SLURM, rerun, preemption
and time-limit tests share; that is why this check lives with them (one group, one worker)."""

from __future__ import annotations

import json

import h5py
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # CI runs it (bin/test: the budget rule)

RULES_WITH_LOGS = ["synth_zebrafish", "synth_zebrafish_plane", "synth_ibl_session", "inventory_fish",
                   "inventory_session", "bin_ibl_session", "align_behavior", "motion_correct", "extract_plane",
                   "neural_file", "neds_baselines", "neds_train_single", "neds_pretrain", "neds_finetune",
                   "neds_region", "neds_report", "neds_ndt2", "neds_poyo", "neds_baseline_pretrain",
                   "neds_baseline_finetune", "train_decoder", "salience", "salience_summary"]


def test_ci_config_runs_end_to_end(finished_local_run):
    results = finished_local_run.workdir / "results"

    # Inputs and ground truth are separate folders.
    fish_dir = results / "synth" / "zebrafish" / "fishA"
    assert sorted(p.name for p in fish_dir.iterdir()) == [
        "frame_times.csv", "plane0.tif", "plane1.tif", "region_mask.tif", "stimulus_log.csv", "tail_log.csv",
    ]
    with h5py.File(results / "synth/ground_truth/zebrafish/fishA.h5") as truth:
        assert truth["calcium/dff"].shape[1] == 60
    with h5py.File(results / "synth/ground_truth/ibl/sesA.h5") as truth:
        assert truth["clusters/region"].shape == (20,)
    inventory = json.loads((results / "inventory/fish/fishA.json").read_text())
    assert [p["n_frames"] for p in inventory["planes"]] == [60, 60]
    assert inventory["tail_log"]["covers_imaging"]
    session = json.loads((results / "inventory/sessions/sesB.json").read_text())
    assert session["n_trials"] == 40
    assert all(probe["n_spikes"] > 0 for probe in session["probe_collections"].values())
    with h5py.File(results / "ibl/binned/sesB.h5") as binned:
        n_trials, n_bins, n_neurons = binned["spikes/counts"].shape
        assert n_bins == 100 and 0 < n_trials <= 40 and n_neurons > 0
        assert all(len(digest) == 64 for digest in json.loads(binned.attrs["source_files_json"]).values())
    with h5py.File(results / "neural/fishA.h5") as neural:
        n_neurons, n_volumes = neural["neurons/dff"].shape
        assert n_volumes == 60 and n_neurons > 0
        assert set(neural["neurons/plane"][()]) <= {0, 1}
        assert set(neural["neurons/region"].asstr()[()]) <= {"Pt", "nMLF", "Hb", "other"}
    with h5py.File(results / "imaging/fishA/plane1/registered.h5") as registered:
        assert registered["registered"].shape == (60, 48, 48)
    with h5py.File(results / "behavior/fishA.h5") as behavior:
        assert behavior["tail/theta"].shape == (60, 6)
        assert set(json.loads(behavior.attrs["source_files_json"])) == {
            f"results/synth/zebrafish/fishA/{name}" for name in ["tail_log.csv", "stimulus_log.csv", "frame_times.csv"]
        }
    comparison = (results / "tables/neds_comparison.csv").read_text()  # NEDS: every method on the held-out sesB
    assert all(f"sesB,{m}," in comparison for m in ("linear", "rrr", "ndt2", "ndt2_multi_session", "poyo",
                                                    "poyo_multi_session", "neds_multimodal", "neds_multi_session"))
    assert "sesA," not in comparison and (results / "figures/neds_region_confusion.png").exists()
    assert (results / "figures/neds_validation_curves.png").exists()
    for rule in RULES_WITH_LOGS:
        assert any((results / "logs" / rule).rglob("*.log")), rule
        assert any((results / "benchmarks" / rule).rglob("*.tsv")), rule
