"""Bad frames and the valid region of a registered plane.

A frame is *bad* when its registration cannot be trusted (suite2p's ``badframes``): a swim
bout can shear a resonant-scanned frame (the brain moves while the lines are scanned, so
the top and bottom of the frame are displaced differently), jump far from its neighbours,
or blur it beyond matching the template. Detection uses what registration measured, per
frame t (T frames, npy x npx patches):

* ``shear``: the patch shifts relative to the rigid shift, minus their running median over
  ``window_frames`` frames (the slow non-rigid deformation), averaged over each row of
  patches; the score is ``hypot(ptp_rows(dy), ptp_rows(dx))`` scaled by
  ``(Ly - 1) / (span of the patch-row centres)`` (px): how differently the top and bottom
  of the frame moved, extrapolated linearly from the patch rows to the whole frame. Bad
  when > ``max_shear_px``. Needs at least two rows of patches (else the score is 0).
* ``shift_outlier``: ``|rigid(t) - running median of rigid over window_frames|`` (px,
  Euclidean) > ``max_shift_jump_px``.
* ``low_correlation``: correlation to the template after registration below
  ``median - corr_mads * 1.4826 * MAD`` over the movie.

The reasons are a bit mask (:data:`REASONS`). The *valid region* holds the pixels whose
registered value came from inside the field of view in every good frame (registration
replicates edge pixels elsewhere).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: bit -> reason of ``bad_frame_reason``
REASONS = {1: "shift_outlier", 2: "low_correlation", 4: "shear"}


def detect_bad_frames(rigid_px: np.ndarray, patch_px: np.ndarray, corr_after: np.ndarray,
                      patch_centre_y_px: np.ndarray, frame_height_px: int, *,
                      max_shear_px: float, max_shift_jump_px: float, corr_mads: float,
                      window_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """rigid (T, 2), patch (T, npy, npx, 2) shifts in px, correlation to the template (T,),
    the row coordinate of each patch row's centre (npy,) px and the frame height Ly (px)
    -> (reason bit mask (T,) uint8, shear score (T,) px). A frame is bad where the mask is
    non-zero; thresholds as in the module docstring (the ``bad_frame_*`` settings of
    :class:`pipeline.imaging.config.NormcorreParams`)."""
    rigid = np.asarray(rigid_px, float)
    patch = np.asarray(patch_px, float)
    corr = np.asarray(corr_after, float)
    t = len(rigid)
    window = min(window_frames | 1, max(t | 1, 1))
    reason = np.zeros(t, np.uint8)
    base = ndimage.median_filter(rigid, size=(window, 1), mode="nearest")
    reason[np.hypot(*(rigid - base).T) > max_shift_jump_px] |= 1
    med = np.median(corr)
    mad = 1.4826 * np.median(np.abs(corr - med))
    if mad > 0:
        reason[corr < med - corr_mads * mad] |= 2
    resid = patch - rigid[:, None, None, :]
    resid = resid - ndimage.median_filter(resid, size=(window, 1, 1, 1), mode="nearest")
    rows = resid.mean(axis=2)  # (T, npy, 2)
    centres = np.asarray(patch_centre_y_px, float)
    span = float(np.ptp(centres)) if centres.size > 1 else 0.0
    scale = (frame_height_px - 1) / span if span > 0 else 0.0
    shear = scale * np.hypot(np.ptp(rows[..., 0], axis=1), np.ptp(rows[..., 1], axis=1))
    reason[shear > max_shear_px] |= 4
    return reason, shear


def valid_region(sample_y: np.ndarray, sample_x: np.ndarray, ly: int, lx: int) -> np.ndarray:
    """(Ly, Lx) bool: pixels whose sampling positions ``sample_y``/``sample_x`` (min and max over
    the good frames, each (2, Ly, Lx): [min, max]) stay inside the frame."""
    return ((sample_y[0] >= 0) & (sample_y[1] <= ly - 1) & (sample_x[0] >= 0) & (sample_x[1] <= lx - 1))
