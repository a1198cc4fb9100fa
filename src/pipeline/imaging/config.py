"""Parameter dataclasses of the imaging stages: the motion-correction backends
(:mod:`pipeline.imaging.normcorre`, :mod:`pipeline.imaging.suite2p_registration`,
:mod:`pipeline.imaging.caiman_registration`), ROI extraction (:mod:`pipeline.imaging.extraction`)
and the neural file (:mod:`pipeline.imaging.neural`). The backend choice itself is
:mod:`pipeline.imaging.motion`.

Torch- and suite2p-free: the Snakefile builds them at parse time to make the rules' params.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.params import Params


@dataclass(frozen=True)
class NormcorreParams(Params):
    """Motion-correction parameters. Units in the comments; every field has a default."""

    max_rigid_shift_px: float = 15.0  # max |rigid shift| per axis (px)
    nonrigid: bool = True  # piecewise-rigid pass after the rigid one (bool)
    patch_size_px: int = 128  # side of a square patch (px); clipped to the frame size
    patch_overlap_px: int = 32  # overlap of neighbouring patches (px); stride = size - overlap
    max_deviation_px: float = 3.0  # max |patch shift - rigid shift| per axis (px)
    upsample_factor: int = 10  # subpixel precision of the DFT refinement = 1/upsample_factor (px)
    smooth_sigma_px: float = 1.5  # Gaussian low-pass of the phase correlation (px, spatial sd)
    taper_px: int = 8  # width of the cosine taper applied at frame/patch borders before the FFT (px)
    template_frames: int = 200  # frames sampled evenly over the movie to build the template (count)
    template_iterations: int = 2  # register-and-average refinements of the template (count)
    template_update: str = "fixed"  # "fixed": one template for the movie; "rolling": follow slow change (z-drift)
    template_update_frames: int = 500  # rolling: time constant of the exponential template update (frames)
    batch_frames: int = 100  # frames per chunk read/written (count); computed in sub-batches of <= 24 MB tensors
    interpolation: str = "bicubic"  # resampling of the registered movie: "bicubic" or "bilinear"
    output_dtype: str = "float32"  # dtype of the registered movie: "float32" or "uint16" (rounded, clipped)
    metrics_margin_px: int = -1  # border excluded from metrics (px); -1 = ceil(max_rigid + max_deviation), <= L/4
    device: str = "auto"  # "cpu", "cuda", "cuda:N" or "auto" (cuda when available)
    bidi_correction: bool = True  # estimate the bidirectional line phase and correct odd rows before registration
    bidi_block_frames: int = 1000  # frames per phase estimate; the phase is interpolated between blocks (count)
    bidi_max_shift_px: float = 3.0  # largest |phase| searched (px)
    bidi_min_phase_px: float = 0.05  # estimates below this |phase| everywhere are recorded but not applied (px)
    bad_frame_max_shear_px: float = 0.9  # top-to-bottom shear (from patch shifts) above which a frame is bad (px)
    bad_frame_max_shift_jump_px: float = 10.0  # rigid-shift deviation from its running median above which a frame is bad (px)
    bad_frame_corr_mads: float = 8.0  # template correlation this many robust sds below the median: bad (1)
    bad_frame_window_frames: int = 11  # running-median window of the shift baselines (frames)

    RUNTIME_FIELDS = ("device",)  # not a rule param (pipeline.params)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        for name in ("patch_size_px", "upsample_factor", "template_frames", "batch_frames", "bidi_block_frames",
                     "bad_frame_window_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"NormcorreParams.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_rigid_shift_px", "max_deviation_px", "smooth_sigma_px", "patch_overlap_px",
                     "taper_px", "template_iterations", "bidi_max_shift_px", "bidi_min_phase_px",
                     "bad_frame_max_shear_px", "bad_frame_max_shift_jump_px", "bad_frame_corr_mads"):
            if getattr(self, name) < 0:
                raise ValueError(f"NormcorreParams.{name} must be >= 0, got {getattr(self, name)}")
        if self.patch_overlap_px >= self.patch_size_px:
            raise ValueError("NormcorreParams.patch_overlap_px must be < patch_size_px")
        if self.template_update not in ("fixed", "rolling"):
            raise ValueError(f"NormcorreParams.template_update must be fixed or rolling, got {self.template_update!r}")
        if self.template_update_frames < 1:
            raise ValueError("NormcorreParams.template_update_frames must be >= 1")
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"NormcorreParams.interpolation must be bicubic or bilinear, got {self.interpolation!r}")
        if self.output_dtype not in ("float32", "uint16"):
            raise ValueError(f"NormcorreParams.output_dtype must be float32 or uint16, got {self.output_dtype!r}")
        if self.metrics_margin_px < -1:
            raise ValueError("NormcorreParams.metrics_margin_px must be >= -1")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"NormcorreParams.device must be auto, cpu or cuda[:N], got {self.device!r}")


@dataclass(frozen=True)
class Suite2pRegistrationParams(Params):
    """suite2p registration settings used here (the rest keep suite2p's defaults)."""

    nonrigid: bool = True  # block-wise non-rigid pass after the rigid one
    block_size_px: int = 128  # side of suite2p's square registration blocks (px)
    max_rigid_shift_fraction: float = 0.1  # suite2p maxregshift: max rigid shift / frame size
    max_block_shift_px: float = 5.0  # suite2p maxregshiftNR: max block shift beyond the rigid one (px)
    batch_frames: int = 100  # frames per chunk copied to and from the binaries

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.block_size_px < 8 or self.batch_frames < 1 or not 0 < self.max_rigid_shift_fraction < 0.5:
            raise ValueError("need block_size_px >= 8, batch_frames >= 1, 0 < max_rigid_shift_fraction < 0.5")


@dataclass(frozen=True)
class CaimanParams(Params):
    """CaImAn MotionCorrect settings (CaImAn's names in the comments)."""

    max_shift_px: int = 15  # max_shifts = (m, m)
    nonrigid: bool = True  # pw_rigid
    stride_px: int = 96  # strides = (s, s): a new patch every s px
    overlap_px: int = 32  # overlaps = (o, o); patch size = stride + overlap
    max_deviation_px: int = 3  # max_deviation_rigid
    upsample_factor_grid: int = 4  # upsample_factor_grid of the shift field
    batch_frames: int = 100  # frames per chunk copied from CaImAn's memmap to the HDF5 output

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if min(self.max_shift_px, self.stride_px, self.upsample_factor_grid, self.batch_frames) < 1 or self.overlap_px < 0:
            raise ValueError("CaimanParams sizes must be >= 1 (overlap_px >= 0)")


#: ``ExtractionParams.detection_algorithm`` choices (suite2p)
_DETECTION_ALGORITHMS = ("sparsery", "sourcery")
#: ``ExtractionParams.classifier`` choices
CLASSIFIERS = ("builtin", "file", "none")


@dataclass(frozen=True)
class ExtractionParams(Params):
    """Suite2P detection / extraction parameters. Units in the comments."""

    cell_diameter_um: float = 6.0  # expected soma (H2B nucleus) diameter (um); -> suite2p `diameter` in px
    tau_s: float = 1.5  # indicator decay time constant for deconvolution and detection binning (s; GCaMP6s)
    neucoeff: float = 0.7  # neuropil coefficient r in F - r * Fneu (1)
    detection_algorithm: str = "sparsery"  # functional detection: "sparsery" (suite2p default) or "sourcery"
    threshold_scaling: float = 1.0  # multiplies suite2p's detection threshold; smaller finds more ROIs (1)
    spatial_scale: int = 0  # sparsery scale: 0 = auto, 1 = 6 px, 2 = 12 px, 3 = 24 px, 4 = 48 px
    highpass_time: int = 100  # running-mean high-pass window over binned frames before detection (bins)
    max_overlap: float = 0.75  # ROIs overlapping others by more than this fraction are dropped (1)
    snr_threshold: float = 0.0  # drop ROIs with suite2p's trace SNR below this; 0 keeps all (1)
    inner_neuropil_radius: int = 2  # pixels around an ROI excluded from its neuropil mask (px)
    min_neuropil_pixels: int = 350  # minimum pixels in each neuropil mask (px)
    classifier: str = "none"  # which ROIs are cells: "none" (every ROI detection keeps, after snr_threshold; the
    # built-in classifier's probability is still recorded), "builtin" (suite2p's mouse-cortex classifier with
    # iscell_threshold) or "file" (classifier_path). Default by measurement on the realistic synthetic preset
    # (seed 4, 200 volumes, 16 planted drivers, one-to-one match within 4 px): none 14/16 drivers kept, builtin 8/16
    # (it rejects very active nuclei, whose traces are not skewed like sparse cortical somata)
    iscell_threshold: float = 0.5  # classifier probability above which an ROI is a cell (iscell[:, 0]) (1)
    classifier_path: str | None = None  # suite2p classifier .npy, for classifier "file" only
    min_cells: int = 1  # fewer cells than this after classification -> InputDataError "no cells" (count)
    batch_frames: int = 500  # frames per batch when copying the movie and extracting traces (count)
    detection_min_valid_fraction: float = 0.9  # rows/columns searched for cells: inside the field of view in at least
    # this fraction of the good frames by the registered file's rigid shifts; 1 = the valid_region rule (inside in every
    # good frame). Default by measurement on the realistic preset (2 planes, seeds 4/5/6): bout jumps and drift of
    # +-8-12 px made the valid_region window leave out 30-35 % of the frame; in-focus nuclei matched within 4 px
    # 63/62/57 % -> 87/81/81 %, planted drivers 11/12/8 -> 12/12/14 of 16 (1)
    mean_image_nuclei: bool = True  # also take the bright nuclei of the mean image that functional detection missed
    # (nuclear H2B labelling: quiet nuclei have no events to detect; pipeline.imaging.extraction.mean_image_nuclei)
    nucleus_min_snr: float = 10.0  # a mean-image nucleus's band-passed peak must exceed this many sds of the mean image's
    # noise (1)
    device: str = "cpu"  # torch device: "cpu" (default), "cuda", "cuda:N" (falls back to cpu if unavailable)

    RUNTIME_FIELDS = ("device",)  # not a rule param (pipeline.params)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        positive = ("cell_diameter_um", "tau_s", "highpass_time", "min_neuropil_pixels", "batch_frames")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ExtractionParams.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("neucoeff", "threshold_scaling", "inner_neuropil_radius", "min_cells", "nucleus_min_snr"):
            if getattr(self, name) < 0:
                raise ValueError(f"ExtractionParams.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_overlap", "iscell_threshold", "detection_min_valid_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ExtractionParams.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.snr_threshold > 1.0:
            raise ValueError(f"ExtractionParams.snr_threshold must be <= 1, got {self.snr_threshold!r}")
        if not 0 <= self.spatial_scale <= 4:
            raise ValueError(f"ExtractionParams.spatial_scale must be 0..4, got {self.spatial_scale!r}")
        if self.detection_algorithm not in _DETECTION_ALGORITHMS:
            raise ValueError(
                f"ExtractionParams.detection_algorithm must be one of {_DETECTION_ALGORITHMS}, "
                f"got {self.detection_algorithm!r}"
            )
        if self.classifier_path is not None and not isinstance(self.classifier_path, (str, os.PathLike)):
            raise ValueError(f"ExtractionParams.classifier_path must be a path or None, got {self.classifier_path!r}")
        if self.classifier_path is not None:
            object.__setattr__(self, "classifier_path", os.fspath(self.classifier_path))
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"ExtractionParams.classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if (self.classifier == "file") != (self.classifier_path is not None):
            raise ValueError("ExtractionParams: classifier_path is set exactly when classifier is 'file' "
                             f"(classifier {self.classifier!r}, classifier_path {self.classifier_path!r})")
        dev = str(self.device)
        if not (dev == "cpu" or dev == "mps" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ValueError(f"ExtractionParams.device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")


#: ``NeuralFileConfig.offset_method`` choices (dark level of pipeline.imaging.dff.dark_level).
OFFSET_METHODS = ("movie", "config", "none")
#: ``NeuralFileConfig.neucoeff_source`` choices.
NEUCOEFF_SOURCES = ("ops", "config")
#: ``NeuralFileConfig.duplicates`` choices (cross-plane duplicates, pipeline.imaging.duplicates).
DUPLICATE_MODES = ("off", "record", "merge")


@dataclass(frozen=True)
class NeuralFileConfig(Params):
    """How per-plane traces become the neural file (config key ``neural_file``)."""

    neucoeff: float = 0.7  # neuropil coefficient r in Fc = (F - d) - r (Fneu - d) when not taken from ops (1)
    neucoeff_source: str = "ops"  # "ops": the plane folder's recorded coefficient when present; "config": always neucoeff
    offset_method: str = "movie"  # detector dark level d: "movie" (percentile of the mean image), "config", "none"
    offset_adu: float = 0.0  # dark level for offset_method config (raw movie units, ADU)
    offset_percentile: float = 0.5  # percentile of the plane's mean image taken as the dark level (%)
    baseline_window_s: float = 60.0  # running-percentile window of the dF/F baseline (s)
    baseline_percentile: float = 8.0  # percentile of the low-passed Fc taken as the baseline F0 (%)
    baseline_smoothing_s: float = 3.0  # sd of the Gaussian low-pass before the percentile (s); 0 = none
    cells_only: bool = True  # keep only ROIs Suite2P's classifier calls cells
    # cross-plane duplicates (pipeline.imaging.duplicates); defaults measured on the realistic synthetic preset
    duplicates: str = "record"  # "off", "record" (pairs written to /duplicates, every ROI kept) or "merge" (also drop
    # the worse ROI of each pair from /neurons)
    duplicate_max_distance_um: float = 4.0  # candidate copies: xy distance after the planes' offset below this (um;
    # 2/3 of a 6 um nucleus: wider than the copies' centroid error, which the mixture fits)
    duplicate_max_offset_um: float = 12.0  # largest registration offset between adjacent planes searched (um)
    duplicate_highpass_s: float = 10.0  # sd of the Gaussian low-pass subtracted from dF/F before correlating (s): far
    # above the indicator decay (1.5 s), below z-drift and bleaching (minutes)
    duplicate_min_posterior: float = 0.5  # a candidate is a duplicate when the mixture's probability that it is one
    # cell reaches this (1; 0.5 = Bayes decision at equal costs)
    duplicate_null_near_um: float = 12.0  # null pairs (certainly different cells) lie at least this far apart (um)
    duplicate_null_far_um: float = 24.0  # and at most this far (um)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if not (self.baseline_window_s > 0 and 0 <= self.baseline_percentile <= 100 and self.neucoeff >= 0):
            raise ValueError("need baseline_window_s > 0, 0 <= baseline_percentile <= 100, neucoeff >= 0")
        if not (0 <= self.offset_percentile <= 100 and self.baseline_smoothing_s >= 0):
            raise ValueError("need 0 <= offset_percentile <= 100 and baseline_smoothing_s >= 0")
        if self.offset_method not in OFFSET_METHODS:
            raise ValueError(f"offset_method must be one of {OFFSET_METHODS}, got {self.offset_method!r}")
        if self.duplicates not in DUPLICATE_MODES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_MODES}, got {self.duplicates!r}")
        if not (0 < self.duplicate_max_distance_um <= self.duplicate_max_offset_um
                and 0 < self.duplicate_null_near_um < self.duplicate_null_far_um
                and self.duplicate_highpass_s >= 0 and 0 <= self.duplicate_min_posterior <= 1):
            raise ValueError("need 0 < duplicate_max_distance_um <= duplicate_max_offset_um, "
                             "0 < duplicate_null_near_um < duplicate_null_far_um, duplicate_highpass_s >= 0 "
                             "and 0 <= duplicate_min_posterior <= 1")
        if self.neucoeff_source not in NEUCOEFF_SOURCES:
            raise ValueError(f"neucoeff_source must be one of {NEUCOEFF_SOURCES}, got {self.neucoeff_source!r}")
