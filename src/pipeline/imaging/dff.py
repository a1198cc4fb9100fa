"""dF/F of Suite2P traces with the detector offset removed and a smoothed baseline.

Suite2P's ``F`` and ``Fneu`` are means of raw pixel values, so both carry the detector's
dark level ``d`` (the digitiser offset: positive on many rigs, negative in ScanImage's int16
files). The neuropil-corrected trace ``F - r Fneu`` then carries ``(1 - r) d``, which sits in
the baseline and scales every dF/F by ``F0 / (F0 + (1 - r) d)``. Here (units: the traces'
units, i.e. movie units x ``ops["movie_scale"]``; frames at ``frame_rate_hz``)::

    Fc  = (F - d) - r (Fneu - d)
    F0  = running ``baseline_percentile`` percentile over ``baseline_window_s`` of
          Fc low-passed by a Gaussian of sd ``baseline_smoothing_s``
    dF/F = (Fc - F0) / max(F0, 0.05 median(F - d))

Low-passing before the percentile keeps the baseline from following the noise: the 8th
percentile of an unsmoothed trace sits ~1.4 noise sds below the true baseline
(Suite2P's own ``maximin`` baseline smooths likewise, ``sig_baseline``).

The dark level ``d`` (:func:`dark_level`): ``movie`` = the ``offset_percentile`` percentile
of the plane's mean image (pixels outside the brain receive almost no photons), ``config``
= ``offset_adu`` x movie_scale, ``none`` = 0 (the traces are taken as offset-free).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.imaging.config import OFFSET_METHODS
from pipeline.io.errors import InputDataError


def dark_level(method: str, *, mean_image: np.ndarray | None, percentile: float, offset_adu: float,
               movie_scale: float, source) -> float:
    """Dark level ``d`` in trace units by ``method`` (module docstring). ``source`` names the
    file the mean image came from (for the error when it is missing)."""
    if method == "none":
        return 0.0
    if method == "config":
        return float(offset_adu) * float(movie_scale)
    if method != "movie":
        raise ValueError(f"offset method must be one of {OFFSET_METHODS}, got {method!r}")
    if mean_image is None:
        raise InputDataError(source, "no mean image (ops meanImg) to estimate the detector offset from; "
                                     "set neural_file.offset_method to config (with offset_adu) or none")
    img = np.asarray(mean_image, dtype=np.float64)
    if img.ndim != 2 or not np.all(np.isfinite(img)):
        raise InputDataError(source, f"mean image (ops meanImg) must be a finite 2-D array, got shape {img.shape}")
    return float(np.percentile(img, percentile))


def delta_f_over_f(F: np.ndarray, Fneu: np.ndarray, *, neucoeff: float, dark: float, frame_rate_hz: float,
                   baseline_window_s: float, baseline_percentile: float,
                   baseline_smoothing_s: float) -> tuple[np.ndarray, np.ndarray]:
    """dF/F (rois, frames) float32 and the baseline F0 (rois, frames) float32, as in the
    module docstring; F, Fneu (rois, frames) in trace units, ``dark`` in the same units."""
    corrected = (F.astype(np.float64) - dark) - neucoeff * (Fneu.astype(np.float64) - dark)
    smooth = corrected
    sigma = baseline_smoothing_s * frame_rate_hz
    if sigma > 0:
        smooth = ndimage.gaussian_filter1d(corrected, sigma, axis=1, mode="nearest")
    window = max(3, int(round(baseline_window_s * frame_rate_hz)) | 1)
    baseline = ndimage.percentile_filter(smooth, baseline_percentile, size=(1, window), mode="nearest")
    floor = 0.05 * np.median(F.astype(np.float64) - dark, axis=1, keepdims=True)
    dff = (corrected - baseline) / np.maximum(baseline, np.maximum(floor, 1e-6))
    return dff.astype(np.float32), baseline.astype(np.float32)


def describe(neucoeff: float, dark: float, baseline_percentile: float, baseline_window_s: float,
             baseline_smoothing_s: float) -> str:
    """One-line formula of one plane's dF/F, for the file attributes."""
    return (f"(Fc - F0) / max(F0, 0.05 median(F - d)), Fc = (F - d) - {neucoeff:g} (Fneu - d), d = {dark:.6g}; "
            f"F0 = running {baseline_percentile:g}th percentile over {baseline_window_s:g} s of Fc low-passed "
            f"by a Gaussian of sd {baseline_smoothing_s:g} s")
