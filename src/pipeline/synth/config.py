"""Parameters of the synthetic recordings (config ``synthetic.zebrafish`` and
``synthetic.ibl``); the generators are :mod:`pipeline.synth.zebrafish` and :mod:`pipeline.synth.ibl`.

Light (no h5py, scipy, ONE): the Snakefile builds them at parse time to make the rules' params.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields

from pipeline.params import Params


@dataclass(frozen=True)
class ZebrafishSynthParams(Params):
    """Generator parameters (demo-sized defaults). Units in the comments.

    The defaults are the ``ideal`` preset (no scan artefacts, one plane per neuron).
    ``preset: realistic`` (:data:`PRESETS`) fills every field a config mapping leaves unset
    with the realistic values when the params are built with :meth:`from_mapping` (the
    config path); the constructor takes every value as given.
    """

    preset: str = "ideal"  # "ideal" or "realistic": defaults for the fields a config leaves unset (label)
    # ---- size ----
    n_volumes: int = 300  # number of imaging volumes = pages per plane TIFF (count)
    frame_height_px: int = 128  # Ly: image rows, rostral -> caudal (px)
    frame_width_px: int = 128  # Lx: image columns, fish's left -> right (px)
    neurons_per_plane: int = 60  # labelled nuclei placed in each plane (count)
    # ---- anatomy / footprints ----
    nucleus_diameter_um: float = 6.0  # mean nuclear diameter (um)
    nucleus_diameter_sd_um: float = 0.5  # sd of nuclear diameter across neurons (um)
    nucleus_edge_um: float = 0.6  # logistic edge scale of the footprint (blur + PSF) (um)
    nucleus_aspect_sd: float = 0.1  # sd of log aspect ratio of the elliptic nucleus (1)
    min_separation: float = 0.95  # min centre distance / mean diameter within a plane (1)
    axial_fwhm_um: float = 0.0  # FWHM of a nucleus's axial brightness profile (nucleus x axial PSF) (um);
    # 0 = no axial model: every neuron lies exactly in its plane and stays in focus
    cross_plane_min_weight: float = 0.25  # with axial_fwhm_um > 0: a neuron also appears in the adjacent
    # plane when its axial weight there is >= this (1)
    midline_jitter_frac: float = 0.03  # sd of midline offset from centre column (fraction of Lx)
    # ---- brightness (expected detected photons per pixel per frame) ----
    neuron_f0_photons: float = 30.0  # mean baseline brightness at nucleus centre (photons); at 8 even a perfect
    # trace is shot-noise limited (corr 0.74 with the true dF/F, tests/imaging/test_extraction.py)
    neuron_f0_cv: float = 0.4  # coefficient of variation of baseline brightness across neurons (1)
    background_photons: float = 2.0  # mean diffuse background inside the brain (photons)
    background_smoothness_um: float = 25.0  # spatial correlation length of background/neuropil (um)
    background_fluctuation: float = 0.05  # relative sd of the slow global background fluctuation (1)
    background_fluctuation_tau_s: float = 30.0  # time constant of that fluctuation (s)
    neuropil_photons: float = 1.5  # mean neuropil brightness (photons)
    neuropil_activity_gain: float = 0.5  # neuropil dF/F per unit mean neuronal dF/F of the plane (1)
    bleach_fraction: float = 0.1  # asymptotic fraction of brightness lost to photobleaching (1)
    bleach_tau_s: float = 1500.0  # photobleaching time constant (s)
    # ---- calcium indicator (GCaMP6s, nuclear) ----
    calcium_rise_tau_s: float = 0.1  # rise time constant of the event kernel (s)
    calcium_decay_tau_s: float = 1.5  # decay time constant of the event kernel (s)
    event_amplitude_dff: float = 0.5  # mean peak dF/F of one calcium event (1)
    event_amplitude_cv: float = 0.5  # coefficient of variation of event amplitude (lognormal) (1)
    # ---- roles and activity ----
    n_drivers_per_side: int = 3  # driver neurons in left Pt and in right Pt (count per side)
    stimulus_fraction_pt: float = 0.5  # fraction of non-driver Pt neurons that are direction tuned (1)
    stimulus_fraction_other: float = 0.15  # same for nMLF, Hb and other regions (1)
    noise_rate_hz: float = 0.05  # median spontaneous event rate of noise neurons (Hz)
    stimulus_spont_rate_hz: float = 0.02  # spontaneous event rate of stimulus neurons (Hz)
    stimulus_peak_rate_hz: float = 1.5  # median event rate at preferred direction, motion onset (Hz)
    stimulus_tuning_kappa: float = 2.0  # von Mises concentration of direction tuning (1)
    stimulus_latency_s: float = 0.3  # median response latency after motion on/offset (s)
    stimulus_adaptation_tau_s: float = 3.0  # decay of the onset transient during motion (s)
    stimulus_sustained_fraction: float = 0.3  # sustained / onset response rate during motion (1)
    driver_base_rate_hz: float = 0.2  # baseline event rate of driver neurons (Hz)
    driver_stimulus_rate_hz: float = 2.5  # driver event rate added at its preferred direction (Hz)
    driver_tuning_kappa: float = 1.0  # von Mises concentration of driver tuning (left 90, right 270 deg)
    driver_latent_rate_hz: float = 1.5  # driver rate added per unit softplus(latent) (Hz)
    driver_latent_mean: float = -1.5  # mean of the spontaneous latent (OU) per side (1)
    driver_latent_sd: float = 1.0  # sd of the spontaneous latent (1)
    driver_latent_tau_s: float = 2.0  # time constant of the spontaneous latent (s)
    driver_latent_lr_correlation: float = 0.2  # correlation between left and right latents (1)
    # ---- motor map and tail ----
    motor_delay_s: float = 0.3  # delay from driver activity to bout generation (s)
    motor_integration_tau_s: float = 0.3  # exponential integration of driver events (s)
    bout_rate_base_hz: float = 0.03  # driver-independent spontaneous bout rate (Hz)
    bout_rate_gain_hz: float = 1.0  # bout rate per unit softplus of normalised drive (Hz)
    bout_drive_threshold_hz: float = 1.5  # mean driver drive at which the softplus bends (Hz)
    bout_drive_scale_hz: float = 0.5  # softness of the drive -> bout rate map (Hz)
    bout_side_scale_hz: float = 0.5  # right-left drive difference scale of side choice (Hz)
    bout_refractory_s: float = 0.3  # minimum gap between end of a bout and next onset (s)
    bout_duration_s: float = 0.3  # median bout duration (s), clipped to [0.15, 0.6]
    bout_duration_cv: float = 0.25  # coefficient of variation of bout duration (1)
    tail_beat_hz: float = 25.0  # mean tail-beat frequency (Hz), clipped to [18, 35]
    tail_beat_sd_hz: float = 2.5  # sd of tail-beat frequency across bouts (Hz)
    tail_amplitude_rad: float = 0.5  # oscillation amplitude of the caudal segment at vigour 1 (rad)
    turn_bias_rad: float = 0.35  # maximal turn bias of the caudal segment (rad)
    tail_wave_lag_rad: float = 0.45  # phase lag per segment of the travelling wave (rad)
    rest_posture_sd_rad: float = 0.01  # sd of the slow resting posture drift at the tail tip (rad)
    tracking_noise_rad: float = 0.015  # sd of tracking noise at the tail tip (rad; half at rostral end)
    tail_timestamp_jitter_s: float = 0.0002  # sd of behaviour-camera timestamp jitter (s)
    tail_drop_probability: float = 0.001  # probability per camera frame that a dropout starts (1)
    tail_drop_mean_frames: float = 2.0  # mean length of a tracking dropout (camera frames, geometric, >= 1)
    tail_lead_s: float = 2.0  # tail log starts this long before imaging (s)
    tail_lag_s: float = 2.0  # and ends this long after the last frame (s)
    drive_dt_s: float = 0.005  # time step of the driver / bout simulation grid (s)
    # ---- stimulus ----
    stimulus_start_s: float = 1.0  # onset of the first static epoch after imaging start (s)
    static_duration_s: float = 20.0  # static epoch per direction (s; paper: 30)
    moving_duration_s: float = 10.0  # moving epoch per direction (s; paper: 10)
    shuffle_directions: bool = False  # random direction order in every 8-direction cycle
    # ---- acquisition timing ----
    imaging_start_s: float = 0.0  # nominal time of the first frame (s, rig clock)
    frame_time_jitter_s: float = 0.0005  # sd of frame timestamp jitter (s)
    # ---- motion (px) ----
    rigid_drift_sd_px: float = 1.0  # stationary sd of the rigid OU drift per axis (px)
    rigid_drift_tau_s: float = 60.0  # time constant of the rigid drift (s)
    rigid_jump_rate_hz: float = 0.005  # rate of sudden small rigid jumps (Hz)
    rigid_jump_px: float = 1.0  # typical jump size (px, Rayleigh scale)
    rigid_jump_relax_tau_s: float = 120.0  # relaxation time constant of a jump (s)
    bout_motion_px: float = 0.3  # transient brain displacement during a bout at vigour 1 (px)
    nonrigid_grid_y: int = 4  # control-grid nodes along y (count)
    nonrigid_grid_x: int = 4  # control-grid nodes along x (count)
    nonrigid_sd_px: float = 0.4  # stationary sd of each node's non-rigid displacement (px)
    nonrigid_tau_s: float = 30.0  # time constant of the non-rigid field (s)
    warp_order: int = 3  # spline order of the warp (1 or 3)
    line_period_s: float = 0.0  # time between scan lines (s; 63e-6 for an 8 kHz bidirectional resonant
    # scanner); motion is sampled per line, so fast motion shears a frame. 0 = whole frame at its mid time
    bout_shake_px: float = 0.0  # amplitude of the brain oscillation at the tail-beat frequency during a
    # bout at vigour 1 (px; mostly lateral), sampled per line
    bout_jump_px: float = 0.0  # rigid jump of the brain during a bout at vigour 1 (px, random direction)
    bout_jump_relax_s: float = 2.0  # time constant of the return after a bout jump (s)
    bidi_phase_px: float = 0.0  # mean bidirectional line-phase offset: odd rows displaced by +phase in x (px)
    bidi_phase_drift_px: float = 0.0  # sd of the slow (OU) variation of the phase offset (px)
    bidi_phase_tau_s: float = 600.0  # time constant of that variation (s)
    z_drift_um_per_hour: float = 0.0  # linear axial drift rate of every focal plane (um per hour of recording, + =
    # deeper): a session of T s drifts by rate x T / 3600, so a short test fish drifts as little as the same minutes of
    # a real recording do
    z_wander_sd_um: float = 0.0  # sd of a slow (OU) axial wander added to the drift (um)
    z_wander_tau_s: float = 120.0  # time constant of the wander (s)
    zstack_half_range_um: float = 0.0  # reference z-stack per plane (zstack_plane{p}.tif) from -this to +this around the
    # plane's nominal depth (um); 0 = none
    zstack_step_um: float = 1.0  # z step between the reference stack's slices (um)
    # ---- detector ----
    adu_offset: float = 100.0  # digitiser offset (ADU); negative (ScanImage) needs stack_dtype int16
    adu_per_photon: float = 2.0  # gain (ADU per detected photon)
    read_noise_adu: float = 3.0  # Gaussian read/amplifier noise sd (ADU)
    stack_dtype: str = "uint16"  # sample type of the raw TIFFs: "uint16" or "int16" (ScanImage); clipped to its range

    def __post_init__(self) -> None:
        self._coerce_field_types()
        positive = [
            "n_volumes", "frame_height_px", "frame_width_px", "neurons_per_plane",
            "nucleus_diameter_um", "nucleus_edge_um", "calcium_rise_tau_s", "calcium_decay_tau_s",
            "event_amplitude_dff", "n_drivers_per_side", "motor_integration_tau_s",
            "bout_drive_scale_hz", "bout_side_scale_hz", "bout_duration_s", "tail_beat_hz",
            "drive_dt_s", "static_duration_s", "moving_duration_s", "rigid_drift_tau_s",
            "rigid_jump_relax_tau_s", "nonrigid_grid_y", "nonrigid_grid_x", "nonrigid_tau_s",
            "background_fluctuation_tau_s", "bleach_tau_s", "driver_latent_tau_s",
            "stimulus_adaptation_tau_s", "adu_per_photon", "background_smoothness_um",
            "min_separation", "neuron_f0_photons", "bout_jump_relax_s", "bidi_phase_tau_s", "z_wander_tau_s",
            "tail_drop_mean_frames", "zstack_step_um",
        ]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"ZebrafishSynthParams.{name} must be > 0, got {getattr(self, name)!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0 and f.name not in (
                "driver_latent_mean", "imaging_start_s", "stimulus_start_s", "adu_offset", "z_drift_um_per_hour",
                "bidi_phase_px",
            ):
                raise ValueError(f"ZebrafishSynthParams.{f.name} must be >= 0, got {v!r}")
        if self.warp_order not in (1, 3):
            raise ValueError(f"ZebrafishSynthParams.warp_order must be 1 or 3, got {self.warp_order}")
        if self.calcium_rise_tau_s >= self.calcium_decay_tau_s:
            raise ValueError("ZebrafishSynthParams.calcium_rise_tau_s must be < calcium_decay_tau_s")
        if not 0 <= self.driver_latent_lr_correlation < 1:
            raise ValueError("ZebrafishSynthParams.driver_latent_lr_correlation must be in [0, 1)")
        for name in ("stimulus_fraction_pt", "stimulus_fraction_other", "bleach_fraction",
                     "stimulus_sustained_fraction", "tail_drop_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"ZebrafishSynthParams.{name} must be in [0, 1]")
        if self.frame_height_px < 8 or self.frame_width_px < 8:
            raise ValueError("ZebrafishSynthParams: frames must be at least 8 x 8 px")
        if self.preset not in PRESETS:
            raise ValueError(f"ZebrafishSynthParams.preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.stack_dtype not in ("uint16", "int16"):
            raise ValueError(f"ZebrafishSynthParams.stack_dtype must be uint16 or int16, got {self.stack_dtype!r}")
        if self.adu_offset < 0 and self.stack_dtype == "uint16":
            raise ValueError("ZebrafishSynthParams: a negative adu_offset needs stack_dtype int16 "
                             "(uint16 would clip the dark level at 0)")
        if not 0 < self.cross_plane_min_weight <= 1:
            raise ValueError("ZebrafishSynthParams.cross_plane_min_weight must be in (0, 1]")
        if self.tail_drop_mean_frames < 1:
            raise ValueError("ZebrafishSynthParams.tail_drop_mean_frames must be >= 1")

    @classmethod
    def from_mapping(cls, mapping):
        """Build from a config mapping: the fields it leaves unset take the values of its
        ``preset`` (:data:`PRESETS`; ``ideal`` = the dataclass defaults)."""
        values = dict(mapping or {})
        preset = values.get("preset", "ideal")
        if preset not in PRESETS:
            raise ValueError(f"ZebrafishSynthParams.preset must be one of {sorted(PRESETS)}, got {preset!r}")
        return super().from_mapping({**PRESETS[preset], **values})


#: Field values of the ``realistic`` preset: a resonant-scanner recording of a densely labelled
#: (H2B-GCaMP) larval fish with the artefacts real data have; each has ground truth in the
#: truth file (see :func:`pipeline.synth.zebrafish.simulate_fish`). Frame size and duration stay as configured; at
#: 128 x 128 px of 1.2 um the density below is ~1 nucleus per 95 um^2 of brain, i.e.
#: several thousand per plane at paper scale (512 x 512 px: scale neurons_per_plane by 16).
REALISTIC_PRESET = {
    "preset": "realistic",
    "neurons_per_plane": 200,  # dense nuclear labelling
    "min_separation": 1.0,
    "axial_fwhm_um": 8.0,  # 6 um nucleus x ~5 um axial PSF: neurons near mid-spacing appear in two planes
    "cross_plane_min_weight": 0.25,
    "bleach_fraction": 0.3,
    "bleach_tau_s": 1200.0,
    "line_period_s": 63e-6,  # 8 kHz bidirectional resonant scanner: 8 ms per 128-line frame
    "bout_shake_px": 2.0,
    "bout_jump_px": 4.0,
    "bout_jump_relax_s": 2.0,
    "bidi_phase_px": 0.6,
    "bidi_phase_drift_px": 0.1,
    "bidi_phase_tau_s": 600.0,
    "z_drift_um_per_hour": 4.0,  # agarose-embedded larva: a few um per hour (settling, swelling, temperature); 4 um over
    # NLP4Neuro's ~1 h sessions (~4,000 volumes at 1.1 Hz), 0.2 um over a 200-volume (3 min) test fish
    "z_wander_sd_um": 0.5,
    "z_wander_tau_s": 120.0,
    "tail_drop_probability": 0.003,
    "tail_drop_mean_frames": 6.0,  # 30 ms at 200 Hz, below tail_alignment.max_gap_s
    "adu_offset": 250.0,  # positive here; tests also run -250 with stack_dtype int16
    "zstack_half_range_um": 10.0,  # a reference z-stack of +-10 um around each plane, 1 um steps
}


PRESETS = {"ideal": {}, "realistic": REALISTIC_PRESET}


#: Regions along the repeated-site trajectory of the synthetic IBL session, shallow -> deep.
IBL_REGIONS: tuple[str, ...] = ("VISa", "CA1", "DG", "LP", "PO")


@dataclass(frozen=True)
class IblSynthParams(Params):
    """Parameters of one synthetic session (defaults: demo size, ~12 min of task)."""

    # --- size ---
    n_trials: int = 200  # number of trials
    n_clusters: int = 80  # clusters on probe00, incl. many < 2 Hz that the rate filter drops
    # --- task structure ---
    n_unbiased_trials: int = 90  # initial trials with probabilityLeft 0.5
    block_len_scale: float = 60.0  # trials; exponential scale of biased block lengths
    block_len_min: int = 20  # trials; truncation of block lengths (rejection sampling)
    block_len_max: int = 100  # trials
    contrasts: tuple[float, ...] = (1.0, 0.25, 0.125, 0.0625, 0.0)  # equiprobable contrast set
    # --- psychometric behaviour ---
    psy_sigma: float = 0.15  # contrast units; width of the cumulative-Gaussian psychometric
    psy_prior_shift: float = 0.12  # contrast units; bias shift at a fully learnt 0.8 prior
    psy_lapse: float = 0.08  # lapse rate on each side (probability)
    prior_memory_trials: float = 8.0  # trials; time constant of the subjective prior (0: use true block)
    p_nogo: float = 0.01  # probability of a no-go trial (choice 0, timeout)
    response_window_s: float = 60.0  # s; timeout after stimOn for no-go trials
    # --- timing ---
    rt_median_s: float = 0.15  # s; median stimOn -> first movement at full contrast
    rt_contrast_slowing: float = 0.5  # fractional slowing of the RT median at 0% contrast
    rt_log_sd: float = 0.45  # log-sd of the main reaction-time mode
    p_fast_rt: float = 0.02  # probability of an anticipatory RT, uniform 0.02-0.08 s
    p_slow_rt: float = 0.06  # probability of a slow RT, 2 s + log-normal(median 2 s)
    p_nan_stimon: float = 0.005  # probability that stimOn_times is NaN (photodiode missed)
    p_nan_first_move: float = 0.01  # probability that firstMovement_times is NaN (detection failure)
    quiescence_min_s: float = 0.4  # s; minimum quiescent period before the stimulus
    quiescence_max_s: float = 0.7  # s; maximum nominal quiescent period
    p_quiescence_reset: float = 0.4  # probability the mouse moved and prolonged the quiescence
    quiescence_reset_mean_s: float = 1.0  # s; mean extra wait after such a reset (exponential)
    post_correct_s: float = 2.0  # s; feedback -> trial end after a correct trial
    post_error_s: float = 3.0  # s; feedback -> trial end after an error / no-go
    pre_task_s: float = 10.0  # s; recording before the first trial
    post_task_s: float = 10.0  # s; recording after the last trial
    # --- wheel ---
    wheel_ticks_per_rev: int = 4096  # encoder resolution (1024 ppr, X4): step 2*pi/4096 rad
    wheel_threshold_rad: float = 0.28  # rad; displacement that registers a response
    wheel_move_dur_median_s: float = 0.25  # s; median duration of a choice movement
    wheel_spont_rate_hz: float = 0.12  # Hz; rate of candidate spontaneous movements (outside trials)
    wheel_spont_amp_median_rad: float = 0.06  # rad; median |amplitude| of spontaneous movements
    wheel_grid_dt_s: float = 0.001  # s; resolution of the continuous wheel trajectory
    # --- camera / whisking ---
    camera_fps: float = 60.0  # Hz; nominal left camera frame rate
    camera_jitter_s: float = 0.0005  # s; SD of frame-time jitter
    camera_drop_prob: float = 0.001  # probability that a frame is dropped
    me_baseline: float = 400.0  # a.u.; motion energy with no whisking (sensor/lighting floor)
    me_gain: float = 700.0  # a.u.; motion energy per unit of (softplus) whisking drive
    me_noise_sd: float = 0.08  # log-SD of frame-to-frame (multiplicative) motion-energy noise
    me_artifact_sd: float = 0.5  # SD (drive units) of slow non-neural ROI artefacts in the measured ME
    whisk_move_gain: float = 1.5  # whisking drive per unit wheel_speed feature (smoothed)
    whisk_reward_gain: float = 1.5  # whisking/licking drive after a reward (peak)
    whisk_spont_sd: float = 1.0  # SD of the slow spontaneous (arousal) whisking drive
    whisk_spont_tau_s: float = 1.5  # s; time constant of the spontaneous whisking drive
    # --- neurons ---
    rate_median_hz: float = 1.2  # Hz; median target mean firing rate (before regional factor)
    rate_log_sd: float = 1.5  # natural-log SD of the target mean rates across clusters
    rate_min_hz: float = 0.02  # Hz; clip of the target mean rates
    rate_max_hz: float = 80.0  # Hz
    region_span_fractions: tuple[float, ...] = (0.24, 0.12, 0.18, 0.26, 0.20)  # probe share VISa,CA1,DG,LP,PO
    region_span_concentration: float = 30.0  # Dirichlet concentration of per-session spans
    probe_length_um: float = 3840.0  # um; active length of the Neuropixels 1.0 shank
    tuning_gain: float = 1.0  # global multiplier on all tuning weights (0: homogeneous Poisson)
    profile_shared_jitter: float = 0.08  # SD of the shared_seed jitter of regional mean weights
    session_profile_jitter: float = 0.03  # SD of the per-session (animal) shift of regional means
    lead_neuron_sd_s: float = 0.04  # s; SD of neuron leads around the regional mean lead
    max_lead_s: float = 0.15  # s; clip of |lead|
    refractory_s: float = 0.0015  # s; absolute refractory period (0: none)
    private_noise_sd: float = 0.35  # SD (ln-rate) of each neuron's private OU fluctuation (overdispersion)
    private_noise_tau_s: float = 2.0  # s; time constant of the private fluctuation
    gain_drift_sd: float = 0.25  # SD (ln-rate) of each neuron's slow gain drift over the session (non-stationarity)
    gain_drift_tau_s: float = 300.0  # s; time constant of the gain drift (OU)
    region_latent_loading: float = 0.3  # ln-rate per unit latent; mean loading of a region's neurons on its own OU latent
    region_latent_loading_sd: float = 0.15  # ln-rate; neuron-level SD of that loading around the mean
    region_latent_tau_s: float = 0.5  # s; time constant of the region latents (sub-second: region-specific)
    prior_post_stimulus_gain: float = 0.3  # fraction of the block-prior signal left after stimulus onset
    spike_depth_jitter_um: float = 10.0  # um; SD of per-spike depth around the cluster depth
    amp_median_uv: float = 80.0  # uV; median cluster amplitude (spikes.amps are in V)
    subregion_acronyms: bool = False  # write CCF sub-structures (VISa2/3, DG-sg, ...) as acronyms
    # --- numerics ---
    rate_dt_s: float = 0.01  # s; grid of the piecewise-constant rates (multiple of wheel_grid_dt_s)
    chunk_s: float = 60.0  # s; time chunk for the spike generation (bounds memory)

    def __post_init__(self) -> None:
        self._coerce_field_types()

        def bad(msg: str) -> None:
            raise ValueError(f"IblSynthParams: {msg}")

        if self.n_trials < 1:
            bad("n_trials must be >= 1")
        if self.n_clusters < 1:
            bad("n_clusters must be >= 1")
        if not 0 <= self.n_unbiased_trials:
            bad("n_unbiased_trials must be >= 0")
        if not 1 <= self.block_len_min <= self.block_len_max:
            bad("need 1 <= block_len_min <= block_len_max")
        if len(self.contrasts) < 1 or any(not 0 <= c <= 1 for c in self.contrasts):
            bad("contrasts must be a non-empty tuple of values in [0, 1]")
        if len(self.region_span_fractions) != len(IBL_REGIONS) or any(f <= 0 for f in self.region_span_fractions):
            bad(f"region_span_fractions must be {len(IBL_REGIONS)} positive numbers ({', '.join(IBL_REGIONS)})")
        for name in ("p_nogo", "p_fast_rt", "p_slow_rt", "p_nan_stimon", "p_nan_first_move",
                     "p_quiescence_reset", "camera_drop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(f"{name} must be a probability")
        if self.p_fast_rt + self.p_slow_rt > 1:
            bad("p_fast_rt + p_slow_rt must be <= 1")
        if not 0 <= self.psy_lapse < 0.5:
            bad("psy_lapse must be in [0, 0.5)")
        for name in ("psy_sigma", "rt_median_s", "camera_fps", "rate_dt_s", "wheel_grid_dt_s", "chunk_s",
                     "rate_median_hz", "wheel_threshold_rad", "wheel_move_dur_median_s", "probe_length_um",
                     "response_window_s", "region_span_concentration"):
            if not getattr(self, name) > 0:
                bad(f"{name} must be > 0")
        if self.quiescence_min_s <= 0 or self.quiescence_max_s < self.quiescence_min_s:
            bad("need 0 < quiescence_min_s <= quiescence_max_s")
        ratio = self.rate_dt_s / self.wheel_grid_dt_s
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            bad("rate_dt_s must be an integer multiple of wheel_grid_dt_s")
        if self.chunk_s < self.rate_dt_s:
            bad("chunk_s must be >= rate_dt_s")
        if not 0 < self.rate_min_hz <= self.rate_max_hz:
            bad("need 0 < rate_min_hz <= rate_max_hz")
        if self.gain_drift_sd < 0 or self.gain_drift_tau_s <= 0:
            bad("gain_drift_sd must be >= 0 and gain_drift_tau_s > 0")
        if self.region_latent_loading < 0 or self.region_latent_loading_sd < 0 or self.region_latent_tau_s <= 0:
            bad("region_latent_loading and region_latent_loading_sd must be >= 0 and region_latent_tau_s > 0")
        if not 0 <= self.prior_post_stimulus_gain <= 1:
            bad("prior_post_stimulus_gain must be in [0, 1]")
        if self.refractory_s < 0 or self.refractory_s >= self.rate_dt_s:
            bad("refractory_s must be in [0, rate_dt_s)")
        if self.wheel_ticks_per_rev < 1:
            bad("wheel_ticks_per_rev must be >= 1")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)
