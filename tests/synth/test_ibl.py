"""Tests of the synthetic IBL session generator (pipeline.synth.ibl)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.synth import ibl
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import REGIONS, SESSION_PATH, VARIABLES, generate_session

TINY = dict(n_trials=40, n_clusters=20, pre_task_s=5.0, post_task_s=5.0)
TRIAL_FILES = ("intervals", "goCue_times", "stimOn_times", "firstMovement_times", "response_times",
               "feedback_times", "choice", "feedbackType", "contrastLeft", "contrastRight", "probabilityLeft")
RES = 2 * np.pi / 4096


def _gen(root: Path, name: str, params: IblSynthParams, shared: int = 11, session: int = 22) -> tuple[Path, Path]:
    cache, truth = root / name / "cache", root / name / "truth.h5"
    generate_session(cache, truth, params, shared_seed=shared, session_seed=session, progress=False)
    return cache / SESSION_PATH / "alf", truth


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("ibl")
    p = IblSynthParams(**TINY)
    return {
        "a": _gen(root, "a", p),
        "a_again": _gen(root, "a_again", p),
        "b": _gen(root, "b", p, session=23),
        "other_world": _gen(root, "c", p, shared=12),
        # higher, homogeneous rates so that tuning is visible in a 3-minute session
        "rich": _gen(root, "rich", IblSynthParams(n_trials=60, n_clusters=24, rate_median_hz=12.0,
                                                  rate_log_sd=0.3, pre_task_s=5.0, post_task_s=5.0)),
    }


def _npys(d: Path) -> dict[str, np.ndarray]:
    return {str(f.relative_to(d)): np.load(f, allow_pickle=False) for f in sorted(d.rglob("*.npy"))}


def _trials(d: Path) -> dict[str, np.ndarray]:
    return {k: np.load(d / f"_ibl_trials.{k}.npy") for k in TRIAL_FILES}


# ---------------------------------------------------------------------------------------
# params
# ---------------------------------------------------------------------------------------


def test_from_mapping_roundtrip_and_unknown_key():
    p = IblSynthParams.from_mapping({"n_trials": 12, "contrasts": [1, 0.5, 0], "rate_dt_s": 0.005})
    assert p.n_trials == 12 and p.contrasts == (1.0, 0.5, 0.0) and p.rate_dt_s == 0.005
    assert IblSynthParams.from_mapping({}) == IblSynthParams()
    with pytest.raises(ValueError, match="bogus_key"):
        IblSynthParams.from_mapping({"n_trials": 3, "bogus_key": 1})
    with pytest.raises(ValueError):
        IblSynthParams.from_mapping({"n_trials": "many"})
    with pytest.raises(ValueError):
        IblSynthParams(rate_dt_s=0.0105)  # not a multiple of the wheel grid
    # every field has a default
    assert json.loads(IblSynthParams().to_json())["n_clusters"] == 80


# ---------------------------------------------------------------------------------------
# files, dtypes, determinism
# ---------------------------------------------------------------------------------------


def test_file_layout_and_dtypes(sessions):
    d, _ = sessions["a"]
    names = {str(f.relative_to(d)) for f in d.rglob("*.npy")}
    expected = {f"_ibl_trials.{k}.npy" for k in TRIAL_FILES} | {
        "_ibl_wheel.position.npy", "_ibl_wheel.timestamps.npy", "_ibl_leftCamera.times.npy",
        "leftCamera.ROIMotionEnergy.npy", "probe00/pykilosort/spikes.times.npy", "probe00/pykilosort/spikes.clusters.npy",
        "probe00/pykilosort/spikes.amps.npy", "probe00/pykilosort/spikes.depths.npy",
        "probe00/pykilosort/clusters.brainLocationAcronyms_ccf_2017.npy", "probe00/pykilosort/clusters.depths.npy",
        "probe00/pykilosort/clusters.channels.npy", "probe00/pykilosort/channels.localCoordinates.npy",
        "probe00/pykilosort/channels.brainLocationIds_ccf_2017.npy",
        "probe00/pykilosort/#2024-05-06#/channels.brainLocationIds_ccf_2017.npy"}
    assert names == expected
    assert (d / "_ibl_trials.table.pqt").is_file()
    assert {p.name for p in d.parents[5].glob("*.pqt")} == {"sessions.pqt", "datasets.pqt"}  # ONE cache tables
    a = _npys(d)
    for k in TRIAL_FILES:
        assert a[f"_ibl_trials.{k}.npy"].dtype == np.float64
    assert a["_ibl_trials.intervals.npy"].shape == (40, 2)
    t, c = a["probe00/pykilosort/spikes.times.npy"], a["probe00/pykilosort/spikes.clusters.npy"]
    assert t.dtype == np.float64 and c.dtype == np.uint32
    assert len(t) > 1000 and np.all(np.diff(t) >= 0)
    assert c.max() < 20
    assert len(a["probe00/pykilosort/spikes.amps.npy"]) == len(t) == len(a["probe00/pykilosort/spikes.depths.npy"])
    amps = a["probe00/pykilosort/spikes.amps.npy"]
    assert 1e-6 < np.median(amps) < 1e-3  # volts
    acr = a["probe00/pykilosort/clusters.brainLocationAcronyms_ccf_2017.npy"]
    assert acr.dtype.kind == "U" and acr.shape == (20,)
    assert set(acr) <= set(REGIONS) and len(set(acr)) == 5  # >= 1 cluster per region when n >= 5
    assert a["probe00/pykilosort/clusters.depths.npy"].shape == (20,)
    ch = a["probe00/pykilosort/clusters.channels.npy"]
    assert ch.min() >= 0 and ch.max() < 384


def test_deterministic_and_seed_roles(sessions):
    a, a2, b, other = (_npys(sessions[k][0]) for k in ("a", "a_again", "b", "other_world"))
    for k in a:
        np.testing.assert_array_equal(a[k], a2[k], err_msg=k)
    with h5py.File(sessions["a"][1]) as h1, h5py.File(sessions["a_again"][1]) as h2:
        for name in ("clusters/weights", "clusters/rate_hz", "features/data", "trials/choice"):
            np.testing.assert_array_equal(h1[name][()], h2[name][()])
    # a different session seed changes the session ...
    assert not np.array_equal(a["probe00/pykilosort/spikes.times.npy"][:100], b["probe00/pykilosort/spikes.times.npy"][:100])
    assert not np.array_equal(a["_ibl_trials.choice.npy"], b["_ibl_trials.choice.npy"])
    # ... but not the regional profiles fixed by the shared seed
    with h5py.File(sessions["a"][1]) as ha, h5py.File(sessions["b"][1]) as hb, \
            h5py.File(sessions["other_world"][1]) as hc:
        for name in ("regions/profile_mean", "regions/profile_sd", "regions/lead_s", "regions/rate_factor"):
            np.testing.assert_array_equal(ha[name][()], hb[name][()])
        assert not np.allclose(ha["regions/profile_mean"][()], hc["regions/profile_mean"][()])
        assert not np.array_equal(ha["clusters/weights"][()], hb["clusters/weights"][()])
        # neurons really are drawn around their region's profile
        w = ha["clusters/weights"][()]
        reg = ha["clusters/region_index"][()]
        j = VARIABLES.index("stim_contra")
        assert np.mean(w[reg == 0, j]) > np.mean(w[reg == 2, j])  # VISa more visual than DG


def test_truth_contents(sessions):
    _, truth = sessions["a"]
    with h5py.File(truth) as h:
        assert h.attrs["generator"] == "pipeline.synth.ibl"
        assert h.attrs["shared_seed"] == 11 and h.attrs["session_seed"] == 22
        assert json.loads(h.attrs["params_json"])["n_trials"] == 40
        assert "counter-clockwise" in h.attrs["wheel_sign_convention"]
        assert list(h["clusters/weights"].attrs["feature_names"]) == list(VARIABLES)
        assert h["clusters/weights"].shape == (20, len(VARIABLES))
        assert h["features/data"].shape[1] == len(VARIABLES)
        assert h["trials/block"].shape == (40,)
        assert np.all(h["clusters/rate_hz"][()] > 0)
        assert h["features/region_latents"].shape == (h["features/data"].shape[0], len(REGIONS))
        assert list(h["features/region_latents"].attrs["region_names"]) == list(REGIONS)
        loading = h["clusters/region_latent_loading"][()]
        assert loading.shape == (20,) and 0.2 < loading.mean() < 0.4  # default 0.3 +- 0.15 per neuron


def test_residual_count_correlations_by_hand():
    """Neurons 0 and 1 (region "a") fire together in a random half of the trials, neuron 2
    ("b") in another random half; a PSTH shared by all trials is removed, so only the
    trial-to-trial co-fluctuation is left: within 1, across ~0."""
    rng = np.random.default_rng(0)
    align = np.arange(100) * 10.0 + 5.0
    on_a, on_b = rng.random(100) < 0.5, rng.random(100) < 0.5
    t, c = [], []
    for k, a in enumerate(align):
        stimulus = a + 0.25 + 0.01 * np.arange(5)  # every trial: 5 spikes per neuron in the bin after 0.2 s
        for cl, extra in ((0, on_a[k]), (1, on_a[k]), (2, on_b[k])):
            times = np.r_[stimulus, a + 0.65 + 0.01 * np.arange(5)] if extra else stimulus
            t.append(times)
            c.append(np.full(len(times), cl))
    t, c = np.concatenate(t), np.concatenate(c)
    order = np.argsort(t)
    r = ibl.residual_count_correlations(t[order], c[order], np.array(["a", "a", "b"]), align, np.zeros(100),
                                        duration_s=1000.0, bin_s=0.1, window_s=(0.0, 1.0), min_rate_hz=0.5)
    assert r["n_neurons"] == 3 and r["n_within"] == 1 and r["n_across"] == 2
    assert r["within"] == pytest.approx(1.0)
    assert abs(r["across"]) < 0.25


def test_region_latents_make_noise_correlations_region_specific(tmp_path):
    """Noise correlations (counts in 100 ms bins from -0.5 to 1.5 s around stimOn minus the
    PSTH of the trial's stimulus side x choice; neurons >= 2 Hz) are region-specific as in
    brain-wide recordings: within a region in the range reported for nearby neurons
    (0.05-0.1), across regions lower; the region latents make the difference (a session with
    ``region_latent_loading=0`` keeps only the within-region excess of regional tuning)."""
    stats = {}
    for loading in (IblSynthParams().region_latent_loading, 0.0):
        p = IblSynthParams(n_trials=200, n_clusters=300, region_latent_loading=loading)
        d, truth = _gen(tmp_path, f"loading{loading}", p, shared=5, session=101)
        with h5py.File(truth) as h:
            region, duration = h["clusters/region_index"][()], h.attrs["session_duration_s"]
        trials = _trials(d)
        stats[loading] = ibl.residual_count_correlations(
            np.load(d / "probe00/pykilosort/spikes.times.npy"), np.load(d / "probe00/pykilosort/spikes.clusters.npy"),
            region, trials["stimOn_times"], 10 * np.isfinite(trials["contrastLeft"]) + trials["choice"],
            duration_s=duration)
    default, without = stats.values()
    assert default["n_neurons"] >= 100 and default["n_within"] >= 1000
    assert 0.05 <= default["within"] <= 0.1, default  # measured 0.089
    assert default["across"] < 0.02, default  # measured 0.015
    gap = default["within"] - default["across"]
    assert gap - (without["within"] - without["across"]) > 0.03, (default, without)  # measured 0.074 vs 0.027


# ---------------------------------------------------------------------------------------
# trials
# ---------------------------------------------------------------------------------------


def test_trial_times_ordered(sessions):
    tr = _trials(sessions["a"][0])
    iv = tr["intervals"]
    seq = [iv[:, 0], tr["stimOn_times"], tr["firstMovement_times"], tr["response_times"]]
    for x, y in zip(seq[:-1], seq[1:]):
        ok = ~np.isnan(x) & ~np.isnan(y)
        assert np.all(x[ok] < y[ok])
    assert np.all(iv[:, 0] < tr["goCue_times"])
    assert np.all(tr["response_times"] <= tr["feedback_times"])
    assert np.all(tr["feedback_times"] < iv[:, 1])
    assert np.all(iv[1:, 0] >= iv[:-1, 1])  # trials do not overlap
    assert np.all(np.isnan(tr["firstMovement_times"][tr["choice"] == 0]))


def test_choice_feedback_contrast_consistency(sessions):
    for key in ("a", "b", "rich"):
        tr = _trials(sessions[key][0])
        cl, cr, ch, fb = tr["contrastLeft"], tr["contrastRight"], tr["choice"], tr["feedbackType"]
        assert np.all(np.isnan(cl) ^ np.isnan(cr))  # exactly one side
        assert set(np.unique(ch)) <= {-1.0, 0.0, 1.0} and set(np.unique(fb)) <= {-1.0, 1.0}
        left = ~np.isnan(cl)
        np.testing.assert_array_equal(fb == 1, ((ch == 1) & left) | ((ch == -1) & ~left))
        assert set(np.unique(np.r_[cl[left], cr[~left]])) <= set(IblSynthParams().contrasts)
        assert np.all(tr["probabilityLeft"][:40] == 0.5)


def test_block_structure_and_behaviour_large():
    p = IblSynthParams(n_trials=4000)
    tr = ibl._simulate_trials(p, session_seed=5)
    pl = tr["probabilityLeft"]
    assert np.all(pl[:90] == 0.5) and set(np.unique(pl[90:])) == {0.2, 0.8}
    change = np.flatnonzero(np.diff(pl[90:]) != 0) + 1
    runs = np.diff(np.r_[0, change, len(pl) - 90])
    assert np.all(runs[:-1] >= 20) and np.all(runs[:-1] <= 100)
    assert 40 < runs[:-1].mean() < 70
    vals = pl[90:][np.r_[0, change]]
    assert np.all(vals[1:] != vals[:-1])  # alternating 0.2 / 0.8
    # stimulus side follows the block
    is_left = tr["is_left"]
    assert abs(is_left[pl == 0.8].mean() - 0.8) < 0.05 and abs(is_left[pl == 0.2].mean() - 0.2) < 0.05
    # psychometric: the prior biases zero-contrast choices; high contrast mostly correct
    ch, c = tr["choice"], tr["contrast"]
    z = (c == 0) & (ch != 0)
    assert (ch[z & (pl == 0.8)] == 1).mean() > (ch[z & (pl == 0.2)] == 1).mean() + 0.15
    hi = (c == 1) & (ch != 0)
    assert (tr["feedbackType"][hi] == 1).mean() > 0.85
    # reaction times: median ~0.2 s, outliers present, imperfections at small rates
    rt = tr["firstMovement_true"] - tr["stimOn_true"]
    assert 0.15 < np.nanmedian(rt) < 0.3
    assert 0.25 < np.nanmedian(tr["response_times"] - tr["stimOn_true"]) < 0.45
    assert 0.005 < np.nanmean(rt < 0.08) < 0.06 and 0.02 < np.nanmean(rt > 2.0) < 0.12
    nogo = tr["nogo"]
    assert 0 < nogo.mean() < 0.03 and np.all(tr["choice"][nogo] == 0)
    np.testing.assert_allclose((tr["response_times"] - tr["stimOn_true"])[nogo], p.response_window_s)
    assert 0 < np.isnan(tr["stimOn_times"]).mean() < 0.02
    assert 0 < np.isnan(tr["firstMovement_times"][~nogo]).mean() < 0.03


# ---------------------------------------------------------------------------------------
# wheel and camera
# ---------------------------------------------------------------------------------------


def test_wheel_quantised_irregular_and_direction(sessions):
    for key in ("a", "rich"):
        d = sessions[key][0]
        pos = np.load(d / "_ibl_wheel.position.npy")
        ts = np.load(d / "_ibl_wheel.timestamps.npy")
        assert pos.dtype == np.float64 and ts.shape == pos.shape
        ticks = pos / RES
        np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)
        assert np.all(np.diff(ts) > 0)
        assert set(np.unique(np.round(np.diff(ticks)))) <= {-1.0, 1.0}  # one tick per sample
        tr = _trials(d)
        ok = (tr["choice"] != 0) & ~np.isnan(tr["firstMovement_times"])

        def at(t):
            return pos[np.clip(np.searchsorted(ts, t, side="right") - 1, 0, None)]

        disp = at(tr["response_times"][ok]) - at(tr["firstMovement_times"][ok])
        # documented convention: choice +1 (CW) -> position decreases
        assert np.mean(np.sign(disp) == -tr["choice"][ok]) >= 0.9
        assert np.median(np.abs(disp)) > 0.2  # ~ the 0.28 rad response threshold
        # quiescence: little movement in the 0.3 s before stimOn
        so = tr["stimOn_times"]
        okq = ~np.isnan(so)
        assert np.median(np.abs(at(so[okq]) - at(so[okq] - 0.3))) <= RES


def test_camera_and_motion_energy(sessions):
    d = sessions["a"][0]
    t = np.load(d / "_ibl_leftCamera.times.npy")
    me = np.load(d / "leftCamera.ROIMotionEnergy.npy")
    assert t.shape == me.shape and me.dtype == np.float64
    assert np.all(np.diff(t) > 0)
    assert abs(np.median(np.diff(t)) - 1 / 60) < 0.0005
    assert 100 < np.median(me) < 5000 and np.all(me > 0)
    # whisking rises with wheel movement
    pos = np.load(d / "_ibl_wheel.position.npy")
    ts = np.load(d / "_ibl_wheel.timestamps.npy")
    grid = np.arange(t[0], t[-1], 0.05)
    speed = np.abs(np.gradient(np.interp(grid, ts, pos), grid))
    me_g = np.interp(grid, t, me)
    assert me_g[speed > 1.0].mean() > 1.15 * me_g[speed < 0.01].mean()


# ---------------------------------------------------------------------------------------
# probe and spikes
# ---------------------------------------------------------------------------------------


def test_regions_ordered_by_depth(sessions):
    for key in ("a", "b", "rich"):
        d = sessions[key][0] / "probe00" / "pykilosort"
        acr = np.load(d / "clusters.brainLocationAcronyms_ccf_2017.npy", allow_pickle=False)
        depth = np.load(d / "clusters.depths.npy")
        idx = np.array([REGIONS.index(a) for a in acr])
        order = np.argsort(-depth)  # shallow (large distance from tip) first
        assert np.all(np.diff(idx[order]) >= 0)
        assert depth.min() >= 0 and depth.max() <= 3840


def test_subregion_acronyms(tmp_path):
    p = IblSynthParams(n_trials=5, n_clusters=60, subregion_acronyms=True, pre_task_s=1.0, post_task_s=1.0)
    d, truth = _gen(tmp_path, "sub", p)
    acr = np.load(d / "probe00/pykilosort/clusters.brainLocationAcronyms_ccf_2017.npy", allow_pickle=False)
    assert acr.dtype.kind == "U"
    assert any(a.startswith("VISa") and a != "VISa" for a in acr)
    with h5py.File(truth) as h:
        parents = h["clusters/region"].asstr()[()]
    assert all(a.startswith(r) for a, r in zip(acr, parents))


def test_realised_rates_match_truth(sessions):
    d, truth = sessions["a"]
    t = np.load(d / "probe00/pykilosort/spikes.times.npy")
    c = np.load(d / "probe00/pykilosort/spikes.clusters.npy")
    with h5py.File(truth) as h:
        rate = h["clusters/rate_hz"][()]
        dur = h.attrs["session_duration_s"]
    assert t.max() <= dur
    n = np.bincount(c, minlength=len(rate))
    mu = rate * dur
    big = mu > 30
    assert big.sum() >= 5
    assert np.all(np.abs(n[big] - mu[big]) <= 4 * np.sqrt(mu[big]) + 0.03 * mu[big])
    # a realistic spread, with clusters the 2 Hz filter drops
    assert rate.min() < 2.0 < rate.max()
    assert np.all(np.diff(t[c == np.argmax(n)]) >= IblSynthParams().refractory_s)


def _poisson_glm(X: np.ndarray, y: np.ndarray, iters: int = 25, ridge: float = 1e-3) -> np.ndarray:
    """Poisson regression by Newton-IRLS (X includes the intercept column)."""
    b = np.zeros(X.shape[1])
    b[0] = np.log(y.mean() + 1e-9)
    for _ in range(iters):
        mu = np.exp(np.clip(X @ b, -20, 20))
        g = X.T @ (y - mu) - ridge * np.r_[0.0, b[1:]]
        H = (X * mu[:, None]).T @ X + ridge * np.eye(len(b))
        b = b + np.linalg.solve(H, g)
    return b


def test_spikes_follow_generating_features(sessions):
    """Counts follow the generating features: a Poisson GLM on the truth features recovers the
    true tuning weights, and high-wheel-weight neurons fire more in fast 20 ms bins."""
    d, truth = sessions["rich"]
    t = np.load(d / "probe00/pykilosort/spikes.times.npy")
    c = np.load(d / "probe00/pykilosort/spikes.clusters.npy").astype(int)
    with h5py.File(truth) as h:
        f = h["features/data"][()].astype(float)
        dt = h["features/data"].attrs["dt"]
        w = h["clusters/weights"][()]
        lead = h["clusters/wheel_lead_s"][()]
    assert np.all(np.abs(lead) <= IblSynthParams().max_lead_s + 1e-9)
    nb, n_cl = f.shape[0], w.shape[0]
    counts = np.zeros((nb, n_cl))
    b = (t / dt).astype(int)
    np.add.at(counts, (b[b < nb], c[b < nb]), 1)
    est = np.zeros_like(w)
    for i in range(n_cl):
        X = f.copy()
        X[:, 0] = np.roll(f[:, 0], -int(round(lead[i] / dt)))  # the neuron reads speed at t + lead
        est[i] = _poisson_glm(np.column_stack([np.ones(nb), X]), counts[:, i])[1:]
    for var, min_r in (("wheel_speed", 0.8), ("whisker_me", 0.8), ("choice", 0.4), ("stim_contra", 0.6)):
        j = VARIABLES.index(var)
        r = np.corrcoef(est[:, j], w[:, j])[0, 1]
        assert r > min_r, (var, r)
    # shuffling neurons destroys the match (the test can fail)
    j = VARIABLES.index("wheel_speed")
    assert abs(np.corrcoef(est[:, j], np.roll(w[:, j], 7))[0, 1]) < 0.8
    # 20 ms bins: neurons with a high wheel weight fire more when the wheel moves fast
    n20 = nb // 2
    x = f[: 2 * n20, j].reshape(n20, 2).mean(1)
    pooled = counts[: 2 * n20, w[:, j] > 0.3].reshape(n20, 2, -1).sum((1, 2))
    assert pooled[x > np.quantile(x, 0.95)].mean() > 1.3 * pooled[x <= np.quantile(x, 0.5)].mean()


# ---------------------------------------------------------------------------------------
# atomicity
# ---------------------------------------------------------------------------------------


def test_failure_leaves_no_output(tmp_path, monkeypatch):
    def boom(path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ibl, "_write_truth", boom)
    sess, truth = tmp_path / "out" / "alf", tmp_path / "out" / "truth.h5"
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_session(sess, truth, IblSynthParams(n_trials=5, n_clusters=5), shared_seed=1,
                         session_seed=2, progress=False)
    assert not sess.exists() and not truth.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_channel_locations_give_the_cluster_regions_only_at_the_revision(sessions):
    """clusters.channels -> channels.brainLocationIds_ccf_2017 of the revision gives each
    cluster's acronym (an independent iblatlas lookup); the first release is root only."""
    from iblatlas.regions import BrainRegions

    d = sessions["a"][0] / "probe00" / "pykilosort"
    channels = np.load(d / "clusters.channels.npy")
    revised = np.load(d / "#2024-05-06#" / "channels.brainLocationIds_ccf_2017.npy")
    acronyms = np.load(d / "clusters.brainLocationAcronyms_ccf_2017.npy")
    assert revised.shape == (384,)
    assert BrainRegions().id2acronym(revised[channels]).tolist() == acronyms.tolist()
    assert set(np.load(d / "channels.brainLocationIds_ccf_2017.npy").tolist()) == {997}
