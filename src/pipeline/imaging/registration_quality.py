"""Quality datasets shared by the registration backends that wrap other tools
(:mod:`pipeline.imaging.suite2p_registration`, :mod:`pipeline.imaging.caiman_registration`);
the layout matches :mod:`pipeline.imaging.normcorre`'s output."""

from __future__ import annotations

import json

import h5py
import numpy as np

from pipeline.imaging.normcorre import crispness
from pipeline.io.h5 import write_dataset

SIGN_CONVENTION = "content observed at (y, x) came from reference (y - dy, x - dx)"


def frame_correlations(frames: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Pearson r of each frame (n, Ly, Lx) with the template (Ly, Lx)."""
    a = frames.reshape(len(frames), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b = (template - template.mean()).ravel()
    return (a @ b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b) + 1e-12)


def write_quality(f: h5py.File, *, template: np.ndarray, mean_raw: np.ndarray, mean_registered: np.ndarray,
                  corr_before: np.ndarray, corr_after: np.ndarray, algorithm: str, algorithm_version: str,
                  params: dict, source_path: str, n_frames: int) -> dict:
    """Write template, mean images, per-frame correlations and the file attributes;
    return the summary metrics (crispness and mean correlation before/after)."""
    write_dataset(f, "template", template, "a.u.", f"{algorithm} template")
    write_dataset(f, "mean_raw", mean_raw, "a.u.", "mean raw frame")
    write_dataset(f, "mean_registered", mean_registered, "a.u.", "mean registered frame")
    write_dataset(f, "corr_to_template_before", corr_before, "1", "Pearson r of each raw frame with the template")
    write_dataset(f, "corr_to_template_after", corr_after, "1", "Pearson r of each registered frame with the template")
    metrics = {
        "crispness_before": crispness(mean_raw), "crispness_after": crispness(mean_registered),
        "mean_corr_to_template_before": float(corr_before.mean()),
        "mean_corr_to_template_after": float(corr_after.mean()),
    }
    f.attrs.update({**metrics, "algorithm": algorithm, "algorithm_version": algorithm_version,
                    "params_json": json.dumps(params), "source_path": source_path, "device": "cpu",
                    "n_frames": int(n_frames), "sign_convention": SIGN_CONVENTION})
    return metrics
