"""Synthetic IBL-like Neuropixels sessions in ALF layout (ground truth for the NEDS stages).

One call of :func:`generate_session` writes a ONE cache holding one session, laid out as
IBL's current releases are and read through ONE-api like a user's cache: cache tables
``sessions.pqt``/``datasets.pqt`` built with ONE's :func:`one.alf.cache.make_parquet_db`;
session folder :data:`SESSION_PATH` with ``alf/_ibl_trials.table.pqt`` and the same
values as per-attribute ``alf/_ibl_trials.*.npy`` (plus ``goCue_times`` and ``intervals``
only as files), ``alf/_ibl_wheel.*``, ``alf/_ibl_leftCamera.times``,
``alf/leftCamera.ROIMotionEnergy`` and the spike sorting in :data:`PROBE_COLLECTION`
(``spikes.*``, ``clusters.*``, ``channels.*``). Regions are linked as IBL does:
``clusters.channels`` -> ``channels.brainLocationIds_ccf_2017`` (Allen ids); the first
channels release holds no alignment (every channel :data:`UNALIGNED_ALLEN_ID`, root) and
the histology-aligned ids are a re-release in the revision folder
:data:`CHANNELS_REVISION`, which a reader must resolve as ONE does (latest revision wins).
``clusters.brainLocationAcronyms_ccf_2017`` holds the same regions as acronyms. A separate
HDF5 file holds everything that generated the session (the truth: regions, rates, tuning
weights, the feature time courses, the true event times).

Task (IBL biasedChoiceWorld)
    Trials start with a quiescent period (0.4-0.7 s, sometimes prolonged because the mouse
    moved), then the go cue and the visual stimulus (photodiode-detected ``stimOn_times``
    lag the cue by 5-40 ms). The stimulus is on the left with probability
    ``probabilityLeft``: 0.5 for the first ``n_unbiased_trials`` trials, then blocks
    alternating 0.2/0.8 (first biased block 0.2 or 0.8 at random), block lengths drawn from
    an exponential (scale 60) truncated to [20, 100] trials by rejection. Contrasts
    {1, 0.25, 0.125, 0.0625, 0} are equiprobable; the absent side's contrast is NaN (a 0%
    contrast trial still has a side). The mouse's choice follows a psychometric curve with
    lapses whose bias follows a *subjective* prior (an exponential average of recent
    stimulus sides, time constant ``prior_memory_trials``), so the block is partly
    predictable from choices. Choice +1 is correct for left stimuli, -1 for right ones;
    ``feedbackType`` is +1/-1. Reaction times (first movement - stimOn) are log-normal
    (median ~0.2 s, slower at low contrast) with small fractions of anticipatory (< 0.08 s)
    and very slow (> 2 s) outliers; ``response_times - stimOn_times`` has a median of
    ~0.33 s like the real trial tables. Small rates of no-go trials (choice 0,
    firstMovement NaN, response at the 60 s timeout, feedback -1), of NaN stimOn (missed
    photodiode) and of NaN firstMovement (detection failure) are included; the truth file
    keeps the true times of all of these.

Wheel sign convention (IBL)
    ``_ibl_wheel.position`` is in radians, cumulative, **positive = counter-clockwise**;
    choice +1 means the mouse turned the wheel clockwise (CW), choice -1 counter-clockwise
    (CCW). Hence after ``firstMovement_times`` the wheel position moves by
    ``-choice * amplitude``: it **decreases for choice +1** and increases for choice -1.
    Positions are quantised to the X4 encoder resolution 2*pi/4096 rad and sampled at
    every encoder change (irregular timestamps, one tick per sample, like the FPGA-extracted
    ALF wheel). Movements are minimum-jerk (bell-shaped velocity); the response is
    registered when the displacement reaches ``wheel_threshold_rad`` (35 deg of visual
    angle = 0.28 rad of wheel). Small spontaneous movements happen outside trials.

Whisker motion energy
    ``leftCamera.ROIMotionEnergy`` (arbitrary units, hundreds to thousands) is sampled at
    the ``_ibl_leftCamera.times`` (60 Hz with jitter and rare dropped frames). Whisking is
    driven by wheel movement, by licking after rewards and by a slow spontaneous (arousal)
    fluctuation.

Probe
    Recording in the left hemisphere along the repeated-site trajectory: VISa (shallow)
    -> CA1 -> DG -> LP -> PO (deepest, probe tip). ``clusters.depths`` are in um **from
    the probe tip** as in IBL (0 = tip, larger = shallower), so VISa has the largest
    depths. Region extents and cluster proportions vary per session. Cluster ids are
    0..n_clusters-1 in random order with respect to depth (as after spike sorting).

Spike model
    Each cluster is an inhomogeneous Poisson process with an absolute (paralyzable)
    refractory period, piecewise constant on a ``rate_dt_s`` grid::

        log rate_i(t) = b_i + w_i . f(t) + a_i z_r(i)(t) + private_i(t)

    Features f (see :data:`VARIABLES`, truth ``features/data``): wheel speed
    (3 tanh(|velocity| / 6 rad/s), i.e. ~|velocity| / 2 rad/s saturating at 3, read at
    t + lead_i; positive lead = the neuron leads the wheel); whisker motion energy (the
    noise-free ME of the true whisking, standardised with the written ME's mean and SD; the
    written ME adds slow non-neural ROI artefacts and frame noise); a signed choice transient
    around the first movement; the signed subjective block prior (weak; full strength before
    stimulus onset, ``prior_post_stimulus_gain`` of it after, so that it is read out mainly
    from pre-stimulus activity as in IBL); contra- (right) and ipsilateral (left) stimulus responses (Naka-Rushton of
    contrast x transient + sustained kernel); a signed feedback transient; two latent
    population fluctuations (OU, 1 s and 20 s) that no behaviour explains, loaded by every
    region alike (regional mean loading 0). ``z_r`` is a region-specific shared fluctuation:
    one unit-variance OU latent per region (``region_latent_tau_s``, 0.5 s; truth
    ``features/region_latents``), loaded only by that region's neurons with loading ``a_i``
    (mean ``region_latent_loading``, neuron SD ``region_latent_loading_sd``; truth
    ``clusters/region_latent_loading``). Real brain-wide recordings have such structure:
    sub-second count correlations are stronger within a region than across regions, while
    slower (> 1 s) ones are similar (Delaney & O'Donnell 2023, Network Neuroscience 7:731, on
    the Steinmetz et al. 2019 Neuropixels recordings); correlations fall with distance
    between neurons (Smith & Kohn 2008, J Neurosci 28:12591). The default loading 0.3 gives
    within-region noise correlations of 0.064-0.095 in 100 ms bins (0.035-0.054 in 40 ms),
    inside the 0.05-0.1 usually reported for nearby neurons, and 0.008-0.015 across regions
    (:func:`residual_count_correlations`, 300 clusters, 200 trials, session seeds 100-102;
    without the region latents 0.030-0.061 within, the excess of regional tuning). ``private_i`` is
    a per-neuron OU fluctuation (overdispersion) plus a slow per-neuron gain drift (OU,
    ``gain_drift_tau_s`` ~ minutes, SD ``gain_drift_sd``): firing is non-stationary over the
    session as in real recordings (10-s rates of the real fixture's >= 2 Hz units vary with a
    coefficient of variation of 0.20-0.46, quartiles). Region profiles (mean weight of each
    region on each variable, wheel lead, rate factor) are drawn from ``shared_seed`` around
    built-in neuroscience-inspired means, so they are the same across sessions/animals;
    each session shifts them slightly (animal variability) and draws its neurons around
    them from ``session_seed``. Target mean rates are log-normal (median ``rate_median_hz``
    x regional factor, log-sd ``rate_log_sd``; ~60 % of clusters fall below 2 Hz, like the
    real fixture); ``b_i`` makes the session-average rate equal the target exactly for the
    realised features and noise, and the dead-time loss is compensated up to 200 Hz.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from one.alf.cache import make_parquet_db
from scipy.signal import lfilter
from scipy.special import ndtr
from tqdm import tqdm

from pipeline.ibl.regions import allen_ids_from_acronyms
from pipeline.io.atomic import atomic_paths
from pipeline.seeding import rng_for
from pipeline.synth.config import IBL_REGIONS as REGIONS, IblSynthParams

logger = logging.getLogger(__name__)

GENERATOR_NAME = "pipeline.synth.ibl"
GENERATOR_VERSION = "2.2.0"
#: Session folder inside the generated ONE cache (lab/Subjects/subject/date/number).
SESSION_PATH = "synthlab/Subjects/synthetic/2024-01-01/001"
#: Spike-sorting collection of the probe (IBL's current pykilosort layout).
PROBE_COLLECTION = "alf/probe00/pykilosort"
#: Revision folder of the re-released (histology-aligned) channel locations.
CHANNELS_REVISION = "#2024-05-06#"
#: Allen id written for every channel in the first (pre-alignment) channels release: root.
UNALIGNED_ALLEN_ID = 997
#: Neuropixels 1.0: 384 channels, two per 20 um row.
N_CHANNELS = 384


#: Named behavioural / task variables the spike model uses (truth weight columns).
VARIABLES: tuple[str, ...] = (
    "wheel_speed",  # 3 tanh(|wheel velocity| / 6 rad/s) (~ |v| / 2 rad/s), read at t + lead
    "whisker_me",  # noise-free whisker motion energy, standardised by the measured ME's mean/SD
    "choice",  # signed choice (+1 CW / -1 CCW) x transient around first movement
    "block_prior",  # (subjective P(left) - 0.5) / 0.3, sustained per trial
    "stim_contra",  # right (contralateral) stimulus: NR(contrast) x kernel
    "stim_ipsi",  # left (ipsilateral) stimulus: NR(contrast) x kernel
    "feedback",  # feedbackType x transient after feedback
    "latent_fast",  # OU, tau 1 s, unit variance, unexplained by behaviour
    "latent_slow",  # OU, tau 20 s, unit variance, slow drift
)

WHEEL_SPEED_SCALE = 2.0  # rad/s; wheel_speed feature ~ |velocity| / this at low speed ...
WHEEL_SPEED_SAT = 3.0  # ... saturating: feature = SAT * tanh(|v| / (SCALE * SAT)) (neural tuning saturates)
WHEEL_SIGN_CONVENTION = (
    "wheel.position in rad, cumulative, positive = counter-clockwise (IBL). choice +1 = "
    "clockwise turn -> position decreases after firstMovement; choice -1 = counter-clockwise "
    "-> position increases. Displacement sign = -choice."
)
DEPTH_CONVENTION = "clusters.depths / spikes.depths in um from the probe tip (0 = tip, larger = shallower)"

# Built-in regional tuning means and neuron-level SDs (rows REGIONS, columns VARIABLES), in
# log-rate units per unit feature. shared_seed jitters the means (profile_shared_jitter).
_BASE_PROFILE_MEAN = np.array(
    [
        # wheel whisk choice block s_con s_ips fdbk lat_f lat_s
        [0.20, 0.04, 0.00, 0.00, 0.90, 0.15, 0.10, 0.00, 0.00],  # VISa
        [0.25, 0.06, 0.00, 0.00, 0.10, 0.05, 0.20, 0.00, 0.00],  # CA1
        [0.10, 0.04, 0.00, 0.00, 0.05, 0.02, 0.10, 0.00, 0.00],  # DG
        [0.30, 0.12, 0.00, 0.00, 0.50, 0.10, 0.05, 0.00, 0.00],  # LP
        [0.40, 0.18, 0.00, 0.00, 0.15, 0.05, 0.05, 0.00, 0.00],  # PO
    ]
)
_BASE_PROFILE_SD = np.array(
    [
        [0.20, 0.08, 0.10, 0.040, 0.45, 0.15, 0.15, 0.25, 0.25],  # VISa
        [0.22, 0.10, 0.08, 0.045, 0.12, 0.08, 0.20, 0.25, 0.25],  # CA1
        [0.12, 0.08, 0.07, 0.040, 0.08, 0.05, 0.12, 0.25, 0.25],  # DG
        [0.22, 0.18, 0.14, 0.045, 0.35, 0.12, 0.10, 0.25, 0.25],  # LP
        [0.25, 0.20, 0.16, 0.045, 0.15, 0.08, 0.10, 0.25, 0.25],  # PO
    ]
)
_BASE_LEAD_S = np.array([0.0, 0.02, 0.0, 0.05, 0.05])  # mean neural lead over wheel speed
_BASE_RATE_FACTOR = np.array([1.0, 0.7, 0.5, 1.6, 1.6])  # regional firing-rate multiplier
_BASE_DENSITY = np.array([1.2, 1.3, 0.8, 1.0, 1.0])  # relative unit yield per um
# CCF 2017 sub-structures used when subregion_acronyms=True (fractions of the region span,
# listed shallow -> deep).
_SUBREGIONS = {
    "VISa": (("VISa1", 0.1), ("VISa2/3", 0.25), ("VISa4", 0.1), ("VISa5", 0.25), ("VISa6a", 0.2), ("VISa6b", 0.1)),
    "DG": (("DG-mo", 0.35), ("DG-sg", 0.2), ("DG-po", 0.45)),
}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _min_jerk_pos(tau: np.ndarray) -> np.ndarray:
    """Normalised minimum-jerk position profile on tau in [0, 1]."""
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)


def _min_jerk_vel(tau: np.ndarray) -> np.ndarray:
    """d/dtau of :func:`_min_jerk_pos` (bell-shaped, peak 1.875 at tau=0.5)."""
    return 30.0 * tau**2 * (1.0 - tau) ** 2


def _ou(rng: np.random.Generator, n: int, dt: float, tau: float) -> np.ndarray:
    """Stationary unit-variance Ornstein-Uhlenbeck process sampled every dt."""
    a = math.exp(-dt / tau)
    eps = rng.standard_normal(n)
    zi = np.array([a * rng.standard_normal()])  # stationary initial state
    y, _ = lfilter([math.sqrt(1.0 - a * a)], [1.0, -a], eps, zi=zi)
    return y


def _dead_time_inverse(x: np.ndarray) -> np.ndarray:
    """y solving y exp(-y) = x for 0 <= x <= 0.3 (principal branch, = -W0(-x)); Newton."""
    y = x * (1.0 + x * (1.0 + x * (1.5 + x * (8.0 / 3.0))))  # series, rel. error < 1e-6 for x < 0.02
    big = np.flatnonzero(x > 0.02)
    if big.size:
        xb, yb = x.ravel()[big], y.ravel()[big]
        for _ in range(4):
            e = np.exp(-yb)
            yb = yb - (yb * e - xb) / (e * (1.0 - yb))
        y.ravel()[big] = yb
    return y


def _naka_rushton(c: np.ndarray) -> np.ndarray:
    c = np.nan_to_num(np.asarray(c, dtype=float), nan=0.0)
    return c**1.5 / (c**1.5 + 0.15**1.5)


def _block_sequence(p: IblSynthParams, rng: np.random.Generator) -> np.ndarray:
    n = p.n_trials
    pl = np.full(n, 0.5)
    i = min(p.n_unbiased_trials, n)
    current = 0.2 if rng.random() < 0.5 else 0.8
    while i < n:
        while True:  # IBL: exponential block length, truncated by rejection
            length = int(round(rng.exponential(p.block_len_scale)))
            if p.block_len_min <= length <= p.block_len_max:
                break
        pl[i : i + length] = current
        i += length
        current = 1.0 - current
    return np.round(pl, 10)


# ----------------------------------------------------------------------------------------
# trials
# ----------------------------------------------------------------------------------------


def _simulate_trials(p: IblSynthParams, session_seed: int) -> dict[str, np.ndarray]:
    """Trial sequence, behaviour and timing. Returns true and reported quantities."""
    n = p.n_trials
    pl = _block_sequence(p, rng_for(session_seed, "blocks"))

    rs = rng_for(session_seed, "stimuli")
    is_left = rs.random(n) < pl
    contrast = np.asarray(p.contrasts, dtype=float)[rs.integers(0, len(p.contrasts), n)]

    rc = rng_for(session_seed, "choices")
    subj = np.empty(n)
    prior = 0.5
    for k in range(n):
        subj[k] = prior if p.prior_memory_trials > 0 else pl[k]
        if p.prior_memory_trials > 0:
            prior += (float(is_left[k]) - prior) / max(p.prior_memory_trials, 1.0)
    signed_contrast = np.where(is_left, contrast, -contrast)  # >0: left, choice +1 correct
    shift = p.psy_prior_shift * (subj - 0.5) / 0.3
    p_cw = p.psy_lapse + (1.0 - 2.0 * p.psy_lapse) * ndtr((signed_contrast + shift) / p.psy_sigma)
    choice = np.where(rc.random(n) < p_cw, 1.0, -1.0)
    nogo = rc.random(n) < p.p_nogo

    rt_rng = rng_for(session_seed, "timing")
    median = p.rt_median_s * (1.0 + p.rt_contrast_slowing * (1.0 - _naka_rushton(contrast)))
    rt = median * np.exp(p.rt_log_sd * rt_rng.standard_normal(n))
    u = rt_rng.random(n)
    fast = u < p.p_fast_rt
    slow = (u >= p.p_fast_rt) & (u < p.p_fast_rt + p.p_slow_rt)
    rt[fast] = rt_rng.uniform(0.02, 0.08, n)[fast]
    rt[slow] = 2.0 + 2.0 * np.exp(0.8 * rt_rng.standard_normal(n))[slow]
    # choice movement: amplitude (overshoot past threshold) and duration
    amp = np.minimum(p.wheel_threshold_rad * (1.05 + rt_rng.gamma(2.0, 0.3, n)), 2.0)
    # larger movements last longer (peak velocities of a few rad/s)
    dur = np.clip(p.wheel_move_dur_median_s * np.sqrt(amp / 0.45) * np.exp(0.3 * rt_rng.standard_normal(n)),
                  0.1, 1.5)
    # time to reach the threshold on the min-jerk profile (bisection)
    target = p.wheel_threshold_rad / amp
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        above = _min_jerk_pos(mid) >= target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    t_thresh = hi * dur
    timeout = rt + t_thresh > p.response_window_s
    nogo |= timeout
    quiescence = rt_rng.uniform(p.quiescence_min_s, p.quiescence_max_s, n)
    quiescence += np.where(rt_rng.random(n) < p.p_quiescence_reset,
                           rt_rng.exponential(p.quiescence_reset_mean_s, n), 0.0)
    cue_lag = rt_rng.uniform(0.005, 0.04, n)  # photodiode stimOn after the go cue
    fb_lag = rt_rng.uniform(0.0002, 0.003, n)
    end_jit = rt_rng.uniform(0.0, 0.05, n)
    gap = rt_rng.uniform(0.02, 0.1, n)

    choice[nogo] = 0.0
    correct = ((choice == 1) & is_left) | ((choice == -1) & ~is_left)
    feedback_type = np.where(correct, 1.0, -1.0)

    start = np.empty(n)
    stim_on = np.empty(n)
    go_cue = np.empty(n)
    first_move = np.full(n, np.nan)
    response = np.empty(n)
    feedback = np.empty(n)
    end = np.empty(n)
    t = p.pre_task_s
    for k in range(n):
        start[k] = t
        go_cue[k] = t + quiescence[k]
        stim_on[k] = go_cue[k] + cue_lag[k]
        if nogo[k]:
            response[k] = stim_on[k] + p.response_window_s
        else:
            first_move[k] = stim_on[k] + rt[k]
            response[k] = first_move[k] + t_thresh[k]
        feedback[k] = response[k] + fb_lag[k]
        end[k] = feedback[k] + (p.post_correct_s if correct[k] else p.post_error_s) + end_jit[k]
        t = end[k] + gap[k]

    ri = rng_for(session_seed, "imperfections")
    nan_stim = ri.random(n) < p.p_nan_stimon
    nan_move = (ri.random(n) < p.p_nan_first_move) & ~nogo
    stim_on_rep = np.where(nan_stim, np.nan, stim_on)
    first_move_rep = np.where(nan_move, np.nan, first_move)

    return {
        "probabilityLeft": pl,
        "subjective_prior": subj,
        "is_left": is_left,
        "contrast": contrast,
        "contrastLeft": np.where(is_left, contrast, np.nan),
        "contrastRight": np.where(is_left, np.nan, contrast),
        "signed_contrast": signed_contrast,
        "p_choice_cw": p_cw,
        "choice": choice,
        "nogo": nogo,
        "feedbackType": feedback_type,
        "intervals": np.column_stack([start, end]),
        "goCue_times": go_cue,
        "stimOn_true": stim_on,
        "stimOn_times": stim_on_rep,
        "firstMovement_true": first_move,
        "firstMovement_times": first_move_rep,
        "response_times": response,
        "feedback_times": feedback,
        "rt_true": np.where(nogo, np.nan, rt),
        "move_amp": np.where(nogo, 0.0, amp),
        "move_dur": np.where(nogo, 0.0, dur),
        "nan_stimOn": nan_stim,
        "nan_firstMovement": nan_move,
        "session_end": np.array(end[-1] + p.post_task_s),
    }


# ----------------------------------------------------------------------------------------
# wheel
# ----------------------------------------------------------------------------------------


def _simulate_wheel(p: IblSynthParams, tr: dict, session_seed: int, n_grid: int) -> dict[str, np.ndarray]:
    """Continuous wheel trajectory on the fine grid + encoder events."""
    rng = rng_for(session_seed, "wheel")
    dt = p.wheel_grid_dt_s
    t_end = n_grid * dt
    moving = ~tr["nogo"]
    onsets = [tr["firstMovement_true"][moving]]
    durs = [tr["move_dur"][moving]]
    amps = [-tr["choice"][moving] * tr["move_amp"][moving]]  # CW (+1) -> position decreases

    # spontaneous movements outside [trial start, end of the choice movement + 0.2 s]
    starts = tr["intervals"][:, 0]
    busy_end = np.where(tr["nogo"], tr["response_times"],
                        tr["firstMovement_true"] + tr["move_dur"] + 0.2)
    busy_end = np.nan_to_num(busy_end, nan=0.0)
    n_cand = rng.poisson(p.wheel_spont_rate_hz * t_end)
    cand = np.sort(rng.uniform(0.5, max(t_end - 2.0, 0.6), n_cand))
    camp = (rng.choice([-1.0, 1.0], n_cand)
            * np.minimum(p.wheel_spont_amp_median_rad * np.exp(0.9 * rng.standard_normal(n_cand)), 1.0))
    cdur = np.clip(0.25 * (np.abs(camp) / 0.06) ** 0.3 * np.exp(0.3 * rng.standard_normal(n_cand)), 0.08, 1.0)
    sp_on, sp_dur, sp_amp = [], [], []
    last_end = -np.inf
    for t0, d, a in zip(cand, cdur, camp):
        t1 = t0 + d
        if t0 < last_end + 0.05:
            continue
        k = np.searchsorted(starts, t1, side="right") - 1  # last trial starting before t1
        if k >= 0 and t0 < busy_end[k] + 0.0:
            continue
        if k + 1 < len(starts) and t1 > starts[k + 1] - 0.0:
            continue
        sp_on.append(t0)
        sp_dur.append(d)
        sp_amp.append(a)
        last_end = t1
    onsets.append(np.asarray(sp_on))
    durs.append(np.asarray(sp_dur))
    amps.append(np.asarray(sp_amp))
    kind = np.concatenate([np.zeros(moving.sum(), np.int8), np.ones(len(sp_on), np.int8)])
    onsets = np.concatenate(onsets)
    durs = np.concatenate(durs)
    amps = np.concatenate(amps)

    pos_partial = np.zeros(n_grid)
    vel = np.zeros(n_grid)
    steps = np.zeros(n_grid + 1)
    t_grid_0 = 0.0
    for t0, d, a in zip(onsets, durs, amps):
        i0 = int(math.ceil((t0 - t_grid_0) / dt))
        i1 = int(math.floor((t0 + d - t_grid_0) / dt))
        i1 = min(i1, n_grid - 1)
        if i1 < i0:
            continue
        tau = (np.arange(i0, i1 + 1) * dt - t0) / d
        pos_partial[i0 : i1 + 1] += a * _min_jerk_pos(tau)
        vel[i0 : i1 + 1] += a / d * _min_jerk_vel(tau)
        steps[i1 + 1] += a
    position = np.cumsum(steps[:-1]) + pos_partial

    # encoder: one sample per tick change, ticks spread evenly within the grid step
    res = 2.0 * np.pi / p.wheel_ticks_per_rev
    ticks = np.round(position / res).astype(np.int64)
    d_ticks = np.diff(ticks)
    idx = np.flatnonzero(d_ticks)
    k = np.abs(d_ticks[idx])
    tot = int(k.sum())
    rep_idx = np.repeat(idx, k)
    within = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
    rep_k = np.repeat(k, k)
    sgn = np.repeat(np.sign(d_ticks[idx]), k)
    ev_t = (rep_idx + (within + 0.5) / rep_k) * dt
    ev_ticks = ticks[rep_idx] + sgn * (within + 1)
    t_first = float(rng.uniform(0.05, 0.2))
    wheel_t = np.concatenate([[t_first], ev_t[ev_t > t_first]])
    wheel_ticks = np.concatenate([[ticks[int(t_first / dt)]], ev_ticks[ev_t > t_first]])
    return {
        "timestamps": wheel_t.astype(np.float64),
        "position": wheel_ticks.astype(np.float64) * res,
        "velocity_grid": vel,
        "move_onset": onsets,
        "move_duration": durs,
        "move_amplitude": amps,
        "move_kind": kind,
    }


# ----------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------


def _window(tc: np.ndarray, dt: float, t0: float, t1: float) -> slice:
    n = len(tc)
    i0 = max(0, int(math.floor(t0 / dt)))
    i1 = min(n, int(math.ceil(t1 / dt)) + 1)
    return slice(i0, max(i0, i1))


def _task_features(p: IblSynthParams, tr: dict, tc: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    n = len(tc)
    choice_f = np.zeros(n)
    block_f = np.zeros(n)
    contra = np.zeros(n)
    ipsi = np.zeros(n)
    fb_f = np.zeros(n)
    reward = np.zeros(n)
    starts = tr["intervals"][:, 0]
    ends = tr["intervals"][:, 1]
    next_start = np.r_[starts[1:], tc[-1] + dt]
    nr = _naka_rushton(tr["contrast"])
    for k in range(len(starts)):
        # (subjective) block prior from this trial's start to the next one: full strength in
        # the inter-trial and quiescent period, prior_post_stimulus_gain of it after stimulus
        # onset (IBL: the prior is read out mainly from pre-stimulus activity, Findling et al. 2023)
        sl = _window(tc, dt, starts[k], next_start[k])
        m = (tc[sl] >= starts[k]) & (tc[sl] < next_start[k])
        gain = np.where(tc[sl][m] < tr["stimOn_true"][k], 1.0, p.prior_post_stimulus_gain)
        block_f[sl][m] = gain * (tr["subjective_prior"][k] - 0.5) / 0.3
        limit = next_start[k]
        # choice transient: rises 150 ms before the movement, decays after (tau 0.35 s)
        if tr["choice"][k] != 0:
            mv = tr["firstMovement_true"][k]
            sl = _window(tc, dt, mv - 0.15, min(mv + 2.0, limit))
            x = tc[sl]
            g = np.where(x < mv + 0.05, 0.5 * (1 - np.cos(np.pi * np.clip((x - (mv - 0.15)) / 0.2, 0, 1))),
                         np.exp(-(x - (mv + 0.05)) / 0.35))
            g[(x < mv - 0.15) | (x >= limit)] = 0.0
            choice_f[sl] += tr["choice"][k] * g
        # stimulus: transient (alpha, latency 40 ms, tau 50 ms) + 0.3 sustained until off
        s = tr["stimOn_true"][k]
        off = min(tr["feedback_times"][k] + (1.0 if tr["feedbackType"][k] > 0 else 2.0), ends[k])
        if nr[k] > 0:
            sl = _window(tc, dt, s, min(max(off, s + 1.0), limit))
            x = tc[sl] - s - 0.04
            xp = np.clip(x, 0, None) / 0.05
            g = np.where(x > 0, xp * np.exp(1 - xp), 0.0) + np.where((x > 0) & (tc[sl] < off), 0.3, 0.0)
            g[tc[sl] >= limit] = 0.0
            (ipsi if tr["is_left"][k] else contra)[sl] += nr[k] * g
        # feedback transient (latency 20 ms, tau 0.4 s), signed by feedbackType
        f = tr["feedback_times"][k]
        sl = _window(tc, dt, f, min(f + 2.0, limit))
        x = tc[sl] - f - 0.02
        g = np.where((x > 0) & (tc[sl] < limit), np.exp(-np.clip(x, 0, None) / 0.4), 0.0)
        fb_f[sl] += tr["feedbackType"][k] * g
        if tr["feedbackType"][k] > 0:  # licking bout after reward (drives motion energy)
            sl = _window(tc, dt, f, min(f + 2.5, limit))
            x = tc[sl] - f
            g = np.where((x > 0.1) & (x < 2.5), np.sin(np.pi * np.clip((x - 0.1) / 2.4, 0, 1)) ** 2, 0.0)
            reward[sl] += g
    return {"choice": choice_f, "block_prior": block_f, "stim_contra": contra, "stim_ipsi": ipsi,
            "feedback": fb_f, "reward_lick": reward}


def _simulate_camera(p: IblSynthParams, session_seed: int, t_end: float, tc: np.ndarray, dt: float,
                     speed_f: np.ndarray, reward: np.ndarray) -> dict[str, np.ndarray]:
    rng = rng_for(session_seed, "camera")
    fps = p.camera_fps * (1.0 + 1e-4 * rng.standard_normal())
    t0 = rng.uniform(0.1, 0.5)
    n_frames = int((t_end - 0.1 - t0) * fps)
    times = t0 + np.arange(n_frames) / fps + p.camera_jitter_s * rng.standard_normal(n_frames)
    times = np.sort(times)
    keep = rng.random(n_frames) >= p.camera_drop_prob
    times = times[keep]
    rw = rng_for(session_seed, "whisking")
    k = max(1, int(round(0.1 / dt)))
    smooth_speed = np.convolve(speed_f, np.ones(k) / k, mode="same")
    drive = (p.whisk_move_gain * smooth_speed
             + p.whisk_reward_gain * reward
             + p.whisk_spont_sd * _ou(rw, len(tc), dt, p.whisk_spont_tau_s)
             + 0.7 * _ou(rw, len(tc), dt, 0.15) - 0.5)
    gain = p.me_gain * math.exp(0.3 * rw.standard_normal())  # per-session lighting / ROI size
    # noise-free motion energy of the true whisking (what neurons see), on the model grid
    me_clean = p.me_baseline + gain * np.logaddexp(0.0, drive)
    # measured ME: plus non-neural ROI artefacts (grooming, paw, lighting; slow) and frame noise
    artefact = p.me_artifact_sd * _ou(rw, len(tc), dt, 5.0)
    d_cam = np.interp(times, tc, drive + artefact)
    me = p.me_baseline + gain * np.logaddexp(0.0, d_cam)
    me *= np.exp(p.me_noise_sd * rw.standard_normal(len(times)))
    return {"times": times, "me": me, "drive": drive, "me_clean": me_clean}


# ----------------------------------------------------------------------------------------
# neurons
# ----------------------------------------------------------------------------------------


def _region_profiles(p: IblSynthParams, shared_seed: int) -> dict[str, np.ndarray]:
    """Structure shared by all sessions: regional mean weights, SDs, leads, rate factors."""
    rng = rng_for(shared_seed, "ibl", "region_profiles")
    mean = _BASE_PROFILE_MEAN + p.profile_shared_jitter * rng.standard_normal(_BASE_PROFILE_MEAN.shape)
    mean[:, [VARIABLES.index("latent_fast"), VARIABLES.index("latent_slow")]] = 0.0
    sd = _BASE_PROFILE_SD * np.exp(0.1 * rng.standard_normal(_BASE_PROFILE_SD.shape))
    lead = _BASE_LEAD_S + 0.02 * rng.standard_normal(len(REGIONS))
    rate_factor = _BASE_RATE_FACTOR * np.exp(0.15 * rng.standard_normal(len(REGIONS)))
    return {"mean": mean * p.tuning_gain, "sd": sd * p.tuning_gain, "lead_s": lead, "rate_factor": rate_factor}


def _draw_clusters(p: IblSynthParams, prof: dict, session_seed: int) -> dict[str, np.ndarray]:
    rng = rng_for(session_seed, "clusters")
    nr = len(REGIONS)
    n = p.n_clusters
    spans = rng.dirichlet(p.region_span_concentration * np.asarray(p.region_span_fractions)
                          / np.sum(p.region_span_fractions))
    # region boundaries in um from the tip: PO at the tip, VISa at the top
    lengths = spans * p.probe_length_um
    lower = np.empty(nr)
    acc = 0.0
    for r in range(nr - 1, -1, -1):
        lower[r] = acc
        acc += lengths[r]
    w = spans * _BASE_DENSITY
    counts = rng.multinomial(n, w / w.sum())
    if n >= nr:  # every region represented
        for r in range(nr):
            while counts[r] == 0:
                counts[np.argmax(counts)] -= 1
                counts[r] += 1
    region = np.repeat(np.arange(nr), counts)
    depth = lower[region] + lengths[region] * rng.uniform(0.03, 0.97, n)
    perm = rng.permutation(n)  # cluster ids unrelated to depth
    region, depth = region[perm], depth[perm]

    acronym = _acronym_at_depth(p, depth, lower, lengths)
    channel_acronym = _acronym_at_depth(p, 20.0 * (np.arange(N_CHANNELS) // 2), lower, lengths).astype(object)
    # the channel of a cluster lies in the cluster's (sub)region: the nearest 20 um row with
    # that acronym (a region thinner than a row keeps the nearest row, relabelled)
    row_acronym = channel_acronym[::2]
    channel_row = np.empty(n, int)
    for k in range(n):
        rows = np.flatnonzero(row_acronym == acronym[k])
        nearest = np.abs(20.0 * rows - depth[k]) if rows.size else None
        channel_row[k] = rows[np.argmin(nearest)] if rows.size else int(np.clip(np.round(depth[k] / 20.0), 0, 191))
    channels = (2 * channel_row + rng.integers(0, 2, n)).astype(np.int64)
    channel_acronym[channels] = acronym

    # session (animal) shift of the regional means, then neuron-level variation
    sess_mean = prof["mean"] + p.session_profile_jitter * p.tuning_gain * rng.standard_normal(prof["mean"].shape)
    weights = sess_mean[region] + prof["sd"][region] * rng.standard_normal((n, len(VARIABLES)))
    lead = np.clip(prof["lead_s"][region] + p.lead_neuron_sd_s * rng.standard_normal(n), -p.max_lead_s, p.max_lead_s)
    lead = np.round(lead / p.rate_dt_s) * p.rate_dt_s
    rate = p.rate_median_hz * prof["rate_factor"][region] * np.exp(p.rate_log_sd * rng.standard_normal(n))
    rate = np.clip(rate, p.rate_min_hz, p.rate_max_hz)
    amp_v = p.amp_median_uv * 1e-6 * np.exp(0.45 * rng.standard_normal(n))
    # loading of each neuron on its own region's latent (own stream: the draws above do not move)
    rng_l = rng_for(session_seed, "region_latent_loadings")
    region_loading = p.tuning_gain * (p.region_latent_loading + p.region_latent_loading_sd * rng_l.standard_normal(n))
    return {"region": region, "acronym": acronym, "depth": depth, "channels": channels,
            "channel_acronym": channel_acronym, "region_latent_loading": region_loading,
            "weights": weights, "lead_s": lead, "rate": rate, "amp_v": amp_v,
            "session_profile_mean": sess_mean, "region_lower_um": lower, "region_length_um": lengths,
            "region_counts": counts}


def _acronym_at_depth(p: IblSynthParams, depth: np.ndarray, lower: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Allen acronym (str) at each depth (um from the tip) given the region extents; CCF
    sub-structures (:data:`_SUBREGIONS`) when ``p.subregion_acronyms``."""
    region = np.clip(np.searchsorted(lower[::-1], depth, side="right") - 1, 0, len(REGIONS) - 1)
    region = len(REGIONS) - 1 - region  # lower is listed shallow -> deep (decreasing)
    acronym = np.array([REGIONS[r] for r in region], dtype=object)
    if p.subregion_acronyms:
        for r_name, subs in _SUBREGIONS.items():
            r = REGIONS.index(r_name)
            m = region == r
            frac_top = (lower[r] + lengths[r] - depth[m]) / lengths[r]  # fraction from the top of the region
            edges = np.cumsum([f for _, f in subs])
            which = np.minimum(np.searchsorted(edges, frac_top, side="right"), len(subs) - 1)
            acronym[m] = [subs[i][0] for i in which]
    return acronym.astype("U")


# ----------------------------------------------------------------------------------------
# spikes
# ----------------------------------------------------------------------------------------


class _Design:
    """Builds the design matrix of any bin range: lagged wheel-speed columns + the rest."""

    def __init__(self, feats: np.ndarray, leads_bins: np.ndarray, weights: np.ndarray):
        # feats: (n_bins, n_variables) in VARIABLES order; wheel speed is column 0
        self.feats = feats
        self.n = feats.shape[0]
        self.lags = np.unique(leads_bins)
        pad = int(np.max(np.abs(self.lags))) if len(self.lags) else 0
        self.pad = pad
        self.speed_pad = np.pad(feats[:, 0], (pad, pad), mode="edge")
        n_cl = weights.shape[0]
        self.W = np.zeros((n_cl, len(self.lags) + feats.shape[1] - 1))
        col = np.searchsorted(self.lags, leads_bins)
        self.W[np.arange(n_cl), col] = weights[:, 0]
        self.W[:, len(self.lags):] = weights[:, 1:]

    def eta(self, i0: int, i1: int) -> np.ndarray:
        idx = np.arange(i0, i1)
        wheel_cols = [self.speed_pad[idx + self.pad + lag] for lag in self.lags]
        X = np.column_stack(wheel_cols + [self.feats[i0:i1, 1:]])
        return X @ self.W.T


def _simulate_spikes(p: IblSynthParams, design: _Design, log_rate_target: np.ndarray, session_seed: int,
                     progress: bool) -> dict[str, np.ndarray]:
    dt = p.rate_dt_s
    n_bins = design.n
    n_cl = log_rate_target.shape[0]
    hold = max(1, int(round(0.05 / dt)))  # private noise sampled every ~50 ms and held
    chunk = hold * max(1, int(round(p.chunk_s / dt / hold)))
    bounds = [(i, min(i + chunk, n_bins)) for i in range(0, n_bins, chunk)]
    a = math.exp(-dt * hold / p.private_noise_tau_s)

    def private_noise():
        """Per-neuron OU log-rate fluctuations, chunk by chunk (same stream in both passes)."""
        rng_p = rng_for(session_seed, "private_noise")
        zi = a * rng_p.standard_normal(n_cl)
        for i0, i1 in bounds:
            if p.private_noise_sd <= 0:
                yield 0.0
                continue
            n_coarse = -(-(i1 - i0) // hold)
            y, zf = lfilter([math.sqrt(1 - a * a)], [1.0, -a], rng_p.standard_normal((n_coarse, n_cl)),
                            axis=0, zi=zi[None, :])
            zi = zf[0]
            yield p.private_noise_sd * np.repeat(y, hold, axis=0)[: i1 - i0]

    # slow gain drift: per-neuron OU in ln-rate, sampled every second, held within the second
    drift_dt = 1.0
    rng_d = rng_for(session_seed, "gain_drift")
    drift = p.gain_drift_sd * np.column_stack(
        [_ou(rng_d, int(math.ceil(n_bins * dt / drift_dt)) + 1, drift_dt, p.gain_drift_tau_s) for _ in range(n_cl)])

    def with_drift(i0: int, i1: int, noise):
        return noise + drift[((np.arange(i0, i1) + 0.5) * dt / drift_dt).astype(int)]

    # pass 1: session-average of exp(w.f + noise) -> baselines giving the target mean rates exactly
    acc = np.zeros(n_cl)
    for (i0, i1), noise in zip(bounds, private_noise()):
        acc += np.exp(design.eta(i0, i1) + with_drift(i0, i1, noise)).sum(axis=0)
    baseline = log_rate_target - np.log(acc / n_bins)
    # pass 2: Poisson counts per bin, uniform times inside bins, refractory deletion
    rng = rng_for(session_seed, "spikes")
    tau = p.refractory_s
    last = np.full(n_cl, -np.inf)
    out_t, out_c = [], []
    max_rate = 1.0 / dt * 20.0
    it = tqdm(zip(bounds, private_noise()), total=len(bounds),
              desc="ibl synth: spikes", unit="chunk", disable=not progress, leave=False)
    for (i0, i1), noise in it:
        lam = np.minimum(np.exp(baseline + design.eta(i0, i1) + with_drift(i0, i1, noise)), max_rate)
        if tau > 0:  # compensate the (paralyzable) dead time: observed = lam' exp(-lam' tau) = lam
            lam = _dead_time_inverse(np.minimum(lam * tau, 0.3)) / tau
        counts = rng.poisson(lam * dt)
        bi, ci = np.nonzero(counts)
        k = counts[bi, ci]
        bi = np.repeat(bi, k)
        ci = np.repeat(ci, k).astype(np.int64)
        t = (i0 + bi + rng.random(len(bi))) * dt
        if tau > 0 and len(t):
            order = np.lexsort((t, ci))
            t, ci = t[order], ci[order]
            prev = np.empty_like(t)
            prev[1:] = t[:-1]
            first = np.ones(len(t), bool)
            first[1:] = ci[1:] != ci[:-1]
            prev[first] = last[ci[first]]
            keep = (t - prev) >= tau
            is_last = np.ones(len(t), bool)
            is_last[:-1] = ci[:-1] != ci[1:]
            last[ci[is_last]] = t[is_last]  # last raw spike (paralyzable dead time)
            t, ci = t[keep], ci[keep]
        order = np.argsort(t, kind="stable")
        out_t.append(t[order])
        out_c.append(ci[order].astype(np.uint32))
    times = np.concatenate(out_t) if out_t else np.zeros(0)
    clusters = np.concatenate(out_c) if out_c else np.zeros(0, np.uint32)
    return {"times": times, "clusters": clusters, "baseline": baseline}


# ----------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------


def generate_session(session_dir, truth_path, params: IblSynthParams, *, shared_seed: int,
                     session_seed: int, progress: bool = True) -> None:
    """Write one synthetic IBL session (ALF folder ``session_dir``) and its truth HDF5."""
    p = params
    logger.info("ibl synth: %d trials, %d clusters (shared_seed=%d, session_seed=%d) -> %s",
                p.n_trials, p.n_clusters, shared_seed, session_seed, session_dir)
    tr = _simulate_trials(p, session_seed)
    dt = p.rate_dt_s
    r = int(round(dt / p.wheel_grid_dt_s))
    n_bins = int(math.ceil(float(tr["session_end"]) / dt))
    t_end = n_bins * dt
    tc = (np.arange(n_bins) + 0.5) * dt

    wheel = _simulate_wheel(p, tr, session_seed, n_bins * r)
    velocity = wheel["velocity_grid"].reshape(n_bins, r).mean(axis=1)
    speed = np.abs(wheel["velocity_grid"]).reshape(n_bins, r).mean(axis=1)
    speed_f = WHEEL_SPEED_SAT * np.tanh(speed / (WHEEL_SPEED_SCALE * WHEEL_SPEED_SAT))
    task = _task_features(p, tr, tc, dt)
    cam = _simulate_camera(p, session_seed, t_end, tc, dt, speed_f, task["reward_lick"])
    me = cam["me"]
    me_z = (cam["me_clean"] - me.mean()) / me.std()  # true whisking, in units of the measured ME
    rl = rng_for(session_seed, "latents")
    feats = np.column_stack([
        speed_f, me_z, task["choice"], task["block_prior"], task["stim_contra"], task["stim_ipsi"],
        task["feedback"], _ou(rl, n_bins, dt, 1.0), _ou(rl, n_bins, dt, 20.0),
    ])

    rr = rng_for(session_seed, "region_latents")
    region_latents = np.column_stack([_ou(rr, n_bins, dt, p.region_latent_tau_s) for _ in REGIONS])

    prof = _region_profiles(p, shared_seed)
    cl = _draw_clusters(p, prof, session_seed)
    leads_bins = np.round(cl["lead_s"] / dt).astype(int)
    own_region = np.arange(len(REGIONS))[None, :] == cl["region"][:, None]  # (n_clusters, n_regions)
    design = _Design(np.column_stack([feats, region_latents]), leads_bins,
                     np.column_stack([cl["weights"], own_region * cl["region_latent_loading"][:, None]]))
    sp = _simulate_spikes(p, design, np.log(cl["rate"]), session_seed, progress)
    rs = rng_for(session_seed, "spike_features")
    n_sp = len(sp["times"])
    amps = cl["amp_v"][sp["clusters"]] * np.exp(0.12 * rs.standard_normal(n_sp))
    sdepths = (cl["depth"][sp["clusters"]] + p.spike_depth_jitter_um * rs.standard_normal(n_sp)).astype(np.float32)
    logger.info("ibl synth: %.1f s, %d spikes, %d wheel samples, %d camera frames, %d/%d clusters >= 2 Hz",
                t_end, n_sp, len(wheel["timestamps"]), len(cam["times"]), int(np.sum(cl["rate"] >= 2.0)),
                p.n_clusters)

    with atomic_paths(session_dir, truth_path) as (tmp_cache, tmp_truth):
        tmp_dir = tmp_cache / SESSION_PATH / "alf"
        probe = tmp_cache / SESSION_PATH / PROBE_COLLECTION
        (probe / CHANNELS_REVISION).mkdir(parents=True)
        f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        trials_out = {
            "intervals": tr["intervals"], "goCue_times": tr["goCue_times"], "stimOn_times": tr["stimOn_times"],
            "firstMovement_times": tr["firstMovement_times"], "response_times": tr["response_times"],
            "feedback_times": tr["feedback_times"], "choice": tr["choice"], "feedbackType": tr["feedbackType"],
            "contrastLeft": tr["contrastLeft"], "contrastRight": tr["contrastRight"],
            "probabilityLeft": tr["probabilityLeft"],
        }
        for name, arr in trials_out.items():
            np.save(tmp_dir / f"_ibl_trials.{name}.npy", f64(arr))
        table = {name: f64(arr) for name, arr in trials_out.items() if name not in ("intervals", "goCue_times")}
        table.update(intervals_0=f64(tr["intervals"][:, 0]), intervals_1=f64(tr["intervals"][:, 1]))
        pd.DataFrame(table).to_parquet(tmp_dir / "_ibl_trials.table.pqt")
        np.save(tmp_dir / "_ibl_wheel.position.npy", f64(wheel["position"]))
        np.save(tmp_dir / "_ibl_wheel.timestamps.npy", f64(wheel["timestamps"]))
        np.save(tmp_dir / "_ibl_leftCamera.times.npy", f64(cam["times"]))
        np.save(tmp_dir / "leftCamera.ROIMotionEnergy.npy", f64(me))
        np.save(probe / "spikes.times.npy", f64(sp["times"]))
        np.save(probe / "spikes.clusters.npy", sp["clusters"].astype(np.uint32))
        np.save(probe / "spikes.amps.npy", f64(amps))
        np.save(probe / "spikes.depths.npy", sdepths)
        np.save(probe / "clusters.brainLocationAcronyms_ccf_2017.npy", cl["acronym"])
        np.save(probe / "clusters.depths.npy", f64(cl["depth"]))
        np.save(probe / "clusters.channels.npy", cl["channels"])
        np.save(probe / "channels.brainLocationIds_ccf_2017.npy", np.full(N_CHANNELS, UNALIGNED_ALLEN_ID, np.int64))
        np.save(probe / CHANNELS_REVISION / "channels.brainLocationIds_ccf_2017.npy",
                allen_ids_from_acronyms(cl["channel_acronym"].astype(str), "synthetic channel acronyms"))
        np.save(probe / "channels.localCoordinates.npy",
                np.column_stack([np.tile([43.0, 11.0, 59.0, 27.0], N_CHANNELS // 4), 20.0 * (np.arange(N_CHANNELS) // 2)]))
        make_parquet_db(tmp_cache, hash_ids=True)
        _write_truth(tmp_truth, p, shared_seed, session_seed, tr, wheel, cam, feats, region_latents, velocity, prof,
                     cl, sp, t_end)
    logger.info("ibl synth: wrote %s and %s", session_dir, truth_path)


def _write_truth(path: Path, p: IblSynthParams, shared_seed: int, session_seed: int, tr: dict, wheel: dict,
                 cam: dict, feats: np.ndarray, region_latents: np.ndarray, velocity: np.ndarray, prof: dict,
                 cl: dict, sp: dict, t_end: float) -> None:
    gz = {"compression": "gzip", "compression_opts": 4}
    str_dt = h5py.string_dtype()
    with h5py.File(path, "w") as h:
        h.attrs["generator"] = GENERATOR_NAME
        h.attrs["generator_version"] = GENERATOR_VERSION
        h.attrs["shared_seed"] = int(shared_seed)
        h.attrs["session_seed"] = int(session_seed)
        h.attrs["params_json"] = p.to_json()
        h.attrs["wheel_sign_convention"] = WHEEL_SIGN_CONVENTION
        h.attrs["depth_convention"] = DEPTH_CONVENTION
        h.attrs["session_duration_s"] = float(t_end)
        h.attrs["hemisphere"] = "left (stim_contra = right-side stimulus)"
        h.attrs["units"] = json.dumps({
            "time": "s", "rate": "Hz", "baseline_log_rate": "ln(Hz)", "weights": "ln-rate per feature unit",
            "depth": "um from probe tip", "wheel": "rad", "wheel_velocity": "rad/s",
            "wheel_speed_feature":
                f"{WHEEL_SPEED_SAT} * tanh(|velocity| / {WHEEL_SPEED_SCALE * WHEEL_SPEED_SAT} rad/s)",
            "amplitude": "V",
            "lead": "s (positive: neuron leads the wheel)"})

        g = h.create_group("clusters")
        g.create_dataset("region", data=np.array([REGIONS[r] for r in cl["region"]], dtype=object), dtype=str_dt)
        g.create_dataset("region_index", data=cl["region"].astype(np.int64))
        g.create_dataset("acronym", data=cl["acronym"].astype(object), dtype=str_dt)
        g.create_dataset("rate_hz", data=cl["rate"])
        g.create_dataset("baseline_log_rate", data=sp["baseline"])
        d = g.create_dataset("weights", data=cl["weights"])
        d.attrs["feature_names"] = list(VARIABLES)
        d = g.create_dataset("region_latent_loading", data=cl["region_latent_loading"])
        d.attrs["description"] = "ln-rate per unit of the cluster's own region latent (features/region_latents)"
        g.create_dataset("wheel_lead_s", data=cl["lead_s"])
        g.create_dataset("depth_um", data=cl["depth"])
        g.create_dataset("channel", data=cl["channels"])
        g.create_dataset("amp_v", data=cl["amp_v"])
        g.attrs["feature_names"] = list(VARIABLES)

        g = h.create_group("regions")
        g.create_dataset("names", data=np.array(REGIONS, dtype=object), dtype=str_dt)
        d = g.create_dataset("profile_mean", data=prof["mean"])
        d.attrs["feature_names"] = list(VARIABLES)
        d.attrs["description"] = "shared (shared_seed) regional mean weights, rows = names"
        d = g.create_dataset("profile_sd", data=prof["sd"])
        d.attrs["feature_names"] = list(VARIABLES)
        g.create_dataset("lead_s", data=prof["lead_s"])
        g.create_dataset("rate_factor", data=prof["rate_factor"])
        d = g.create_dataset("session_profile_mean", data=cl["session_profile_mean"])
        d.attrs["feature_names"] = list(VARIABLES)
        g.create_dataset("lower_um", data=cl["region_lower_um"])
        g.create_dataset("length_um", data=cl["region_length_um"])
        g.create_dataset("n_clusters", data=cl["region_counts"])

        g = h.create_group("trials")
        for name in ("probabilityLeft", "subjective_prior", "choice", "contrastLeft", "contrastRight", "contrast",
                     "signed_contrast", "p_choice_cw", "feedbackType", "goCue_times", "stimOn_true",
                     "firstMovement_true", "response_times", "feedback_times", "rt_true", "move_amp", "move_dur"):
            g.create_dataset(name, data=np.asarray(tr[name], dtype=np.float64))
        g.create_dataset("intervals", data=tr["intervals"])
        for name in ("is_left", "nogo", "nan_stimOn", "nan_firstMovement"):
            g.create_dataset(name, data=np.asarray(tr[name], dtype=bool))
        g["block"] = h["trials/probabilityLeft"]  # alias: true block

        g = h.create_group("features")
        d = g.create_dataset("data", data=feats.astype(np.float32), chunks=True, **gz)
        d.attrs["feature_names"] = list(VARIABLES)
        d.attrs["t0"] = 0.0
        d.attrs["dt"] = p.rate_dt_s
        d.attrs["description"] = ("row k covers [k*dt, (k+1)*dt); wheel_speed unlagged (each cluster reads it "
                                  "at t + wheel_lead_s); whisker_me = noise-free ME of the true whisking, "
                                  "(ME_clean - mean(ME)) / SD(ME) of the written ROIMotionEnergy")
        d = g.create_dataset("region_latents", data=region_latents.astype(np.float32), chunks=True, **gz)
        d.attrs["region_names"] = list(REGIONS)
        d.attrs["dt"] = p.rate_dt_s
        d.attrs["description"] = ("one unit-variance OU latent per region (columns region_names, time constant "
                                  "region_latent_tau_s), loaded only by that region's clusters "
                                  "(clusters/region_latent_loading)")
        d = g.create_dataset("wheel_velocity", data=velocity.astype(np.float32), chunks=True, **gz)
        d.attrs["units"] = "rad/s (positive = CCW)"
        d = g.create_dataset("whisking_drive", data=cam["drive"].astype(np.float32), chunks=True, **gz)
        d.attrs["description"] = "latent whisking drive (ME = baseline + gain*softplus(drive) * noise)"
        g.attrs["dt"] = p.rate_dt_s

        g = h.create_group("wheel_moves")
        g.create_dataset("onset", data=wheel["move_onset"])
        g.create_dataset("duration", data=wheel["move_duration"])
        g.create_dataset("amplitude", data=wheel["move_amplitude"])
        g.create_dataset("is_spontaneous", data=wheel["move_kind"].astype(bool))


# ----------------------------------------------------------------------------------------
# calibration statistic
# ----------------------------------------------------------------------------------------


def residual_count_correlations(times: np.ndarray, clusters: np.ndarray, cluster_region: np.ndarray,
                                align_times: np.ndarray, condition: np.ndarray, *, duration_s: float,
                                bin_s: float = 0.1, window_s: tuple[float, float] = (-0.5, 1.5),
                                min_rate_hz: float = 2.0) -> dict[str, float]:
    """Mean pairwise noise correlation of spike counts within and across regions.

    Counts in ``bin_s`` bins over ``window_s`` (s) around each trial's ``align_times`` (NaN
    trials dropped); the residual is each count minus the mean over the trials of its
    ``condition`` (the condition's PSTH, per bin and neuron); the Pearson correlation of
    two neurons' residuals over all (trial, bin) samples is their noise correlation. Only
    clusters firing >= ``min_rate_hz`` over the session (``duration_s``) enter (the binning
    filter's rule). ``times`` (s) and ``clusters`` are the spikes; ``cluster_region`` maps a
    cluster id to its region (any labels). Returns ``within`` and ``across`` (mean over the
    pairs in the same / in different regions), ``n_within``/``n_across`` pairs and
    ``n_neurons``.
    """
    align = np.asarray(align_times, float)
    keep_trial = np.isfinite(align)
    align, condition = align[keep_trial], np.asarray(condition)[keep_trial]
    n_cl = len(cluster_region)
    rate = np.bincount(clusters, minlength=n_cl) / duration_s
    n_bins = int(round((window_s[1] - window_s[0]) / bin_s))
    counts = np.zeros((len(align), n_bins, n_cl))
    for k, a in enumerate(align):
        i0, i1 = np.searchsorted(times, [a + window_s[0], a + window_s[0] + n_bins * bin_s])
        b = np.minimum(((times[i0:i1] - a - window_s[0]) / bin_s).astype(int), n_bins - 1)
        np.add.at(counts[k], (b, clusters[i0:i1]), 1)
    for value in np.unique(condition):
        counts[condition == value] -= counts[condition == value].mean(axis=0)
    residual = counts.reshape(-1, n_cl)
    neurons = np.flatnonzero((rate >= min_rate_hz) & (residual.std(axis=0) > 0))
    r = np.corrcoef(residual[:, neurons].T)
    same = np.asarray(cluster_region)[neurons][:, None] == np.asarray(cluster_region)[neurons][None, :]
    upper = np.triu(np.ones_like(same), 1)
    return {"within": float(r[same & upper].mean()), "across": float(r[~same & upper].mean()),
            "n_within": int((same & upper).sum()), "n_across": int((~same & upper).sum()),
            "n_neurons": int(len(neurons))}


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------
