"""Cross-plane duplicates, in-focus nuclei and planted drivers on the realistic synthetic preset,
scored against its truth, with a per-item table of causes.

A still realistic fish (as tests/imaging/test_duplicates.py's acceptance test: 2 planes 7 um
apart, 200 volumes, no rigid motion; z-drift, bleaching, dense nuclei and two-plane cells kept)
with 8 planted drivers per side, through Suite2P (``extraction`` defaults) and
:func:`pipeline.imaging.duplicates.find_cross_plane_duplicates` with the neural-file defaults.
Generation and Suite2P are cached under ``--work`` (per seed, parameters and the source of the
generator and extraction modules), so the matching can be re-scored in seconds.

    PYTHONPATH=src .venv/bin/python bench/duplicates_realistic.py --seeds 4 5 6 --work /tmp/dup

Definitions: a truth row (one nucleus's cross-section in one plane) is *matched* when the
one-to-one assignment of its plane's ROIs to truth rows puts an ROI within 4 px; *in focus* =
``|z_offset_um| <= spacing / 2`` (the plane nearest the nucleus's centre); a *true pair* = both
rows of a two-plane cell matched; a driver is *present* when a row of it is matched to an ROI
that the merge keeps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.imaging.config import ExtractionParams, NeuralFileConfig
from pipeline.imaging.duplicates import highpass
from pipeline.imaging.extraction import extract_plane, read_suite2p_plane
from pipeline.imaging.neural import cross_plane_duplicates, plane_dff
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import axial_weight, generate_fish

STILL = dict(rigid_drift_sd_px=0.0, rigid_jump_rate_hz=0.0, bout_motion_px=0.0, nonrigid_sd_px=0.0,
             bout_shake_px=0.0, bout_jump_px=0.0, bidi_phase_px=0.0, bidi_phase_drift_px=0.0)
META = dict(volume_rate_hz=1.1, n_planes=2, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)
FISH = dict(preset="realistic", n_volumes=200, static_duration_s=3.0, moving_duration_s=5.0,
            zstack_half_range_um=0.0, n_drivers_per_side=8, **STILL)
MATCH_PX = 4.0


def prepare(work: Path, seed: int, extraction: ExtractionParams) -> Path:
    """Generate the fish and run Suite2P on each plane once (cached by seed, params and the source
    of the generator and the extraction module)."""
    import pipeline.imaging.extraction as extraction_module
    import pipeline.synth.zebrafish as generator_module

    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes() for m in (generator_module, extraction_module)))
    key = json.dumps({"fish": FISH, "extraction": extraction.to_dict(), "code": code.hexdigest()}, sort_keys=True)
    root = work / f"seed{seed}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    if (root / "done").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "truth.h5").exists():
        generate_fish(root / "raw", root / "truth.h5", ZebrafishSynthParams.from_mapping(FISH), seed=seed,
                      progress=False, **META)
    for p in range(META["n_planes"]):
        extract_plane(root / "raw" / f"plane{p}.tif", root / f"plane{p}", extraction,
                      frame_rate_hz=META["volume_rate_hz"], pixel_size_um=META["pixel_size_um"])
    (root / "done").write_text(key)
    return root


def _lam_centroid(s) -> np.ndarray:
    out = np.empty((s.n_rois, 2))
    for i in range(s.n_rois):
        a, b = s.footprint_indptr[i], s.footprint_indptr[i + 1]
        idx, w = s.footprint_pixel_index[a:b], s.footprint_weight[a:b].astype(float)
        out[i] = (np.sum(w * (idx // s.Lx)), np.sum(w * (idx % s.Lx))) / w.sum()
    return out


def score(root: Path, config: NeuralFileConfig, finder=cross_plane_duplicates) -> dict:
    """Score the Suite2P output of one cached seed with the duplicate finder ``finder``."""
    with h5py.File(root / "truth.h5") as f:
        t_plane, t_cen, same = f["neurons/plane"][()], f["neurons/centroid_px"][()], f["neurons/same_cell"][()]
        z_off, role = f["neurons/z_offset_um"][()], f["neurons/role"][()].astype(str)
        drift = f["motion/z_drift_um"][()]
        fp = (f["neurons/footprint_indptr"][()], f["neurons/footprint_pixel_index"][()],
              f["neurons/footprint_weight"][()], f["neurons/f0_photons"][()])
        times = f["timing/frame_times"][()]
        fwhm = json.loads(f.attrs["params_json"])["axial_fwhm_um"]
        t_dff = f["calcium/dff"][()]
    planes = [read_suite2p_plane(root / f"plane{p}") for p in range(META["n_planes"])]
    rows = {k: [] for k in ("plane", "roi", "centroid_weighted", "spks", "dff", "Fc")}
    for p, s in enumerate(planes):
        keep = np.flatnonzero(s.is_cell)
        rows["plane"].append(np.full(keep.size, p)), rows["roi"].append(keep)
        rows["centroid_weighted"].append(s.weighted_centroid_px[keep]), rows["spks"].append(s.spks[keep])
        dff, r, _ = plane_dff(s, s.is_cell, config, META["volume_rate_hz"], root / f"plane{p}")
        rows["dff"].append(dff), rows["Fc"].append(s.F[keep].astype(float) - r * s.Fneu[keep])
    m = {k: np.concatenate(v) for k, v in rows.items()}
    m["centroid"] = m["centroid_weighted"]
    # one-to-one match of ROIs to truth rows per plane (Suite2P's med, as the acceptance test)
    truth_of, nearest_d = {}, np.full(len(t_plane), np.inf)
    for p, s in enumerate(planes):
        rois, trows = np.flatnonzero(s.is_cell), np.flatnonzero(t_plane == p)
        d = np.linalg.norm(t_cen[trows][:, None] - s.centroid_px[rois][None], axis=2)
        nearest_d[trows] = d.min(1) if rois.size else np.inf
        r, k = linear_sum_assignment(np.minimum(d, 50.0))
        truth_of.update({(p, int(rois[j])): int(trows[i]) for i, j in zip(r, k) if d[i, j] <= MATCH_PX})
    row_of = {v: k for k, v in truth_of.items()}  # truth row -> (plane, roi)
    merged_index = {(int(p), int(r)): i for i, (p, r) in enumerate(zip(m["plane"], m["roi"]))}
    found = finder(m, times, META["pixel_size_um"], config, f"seed{root.name}")
    key = lambda i: (int(m["plane"][i]), int(m["roi"][i]))  # noqa: E731
    # identity by light: the cell (row or its twin, labelled by the smaller row) that contributes
    # most photons to the ROI's lam-weighted pixels (truth footprint x f0 x mean axial weight)
    cell_of = {}
    for p, s in enumerate(planes):
        trows = np.flatnonzero(t_plane == p)
        img = {}
        for t in trows:
            a0, b0 = fp[0][t], fp[0][t + 1]
            bright = fp[3][t] * float(np.mean(axial_weight(z_off[t] - drift[p], fwhm)))
            for px, w in zip(fp[1][a0:b0], fp[2][a0:b0]):
                img.setdefault(int(px), []).append((t, bright * w))
        for roi in np.flatnonzero(s.is_cell):
            a0, b0 = s.footprint_indptr[roi], s.footprint_indptr[roi + 1]
            light = Counter()
            for px, lam in zip(s.footprint_pixel_index[a0:b0], s.footprint_weight[a0:b0]):
                for t, w in img.get(int(px), ()):
                    light[t] += float(lam) * w
            if light:
                t = light.most_common(1)[0][0]
                cell_of[(p, int(roi))] = min(t, int(same[t])) if same[t] >= 0 else t
    by_light = Counter()
    for a, b in zip(found.kept, found.dropped):
        ca, cb = cell_of.get(key(a), -1), cell_of.get(key(b), -2)
        by_light["same cell" if ca == cb else "different cells"] += 1
    merged = {tuple(sorted((truth_of.get(key(a), -1 - a), truth_of.get(key(b), -1 - b))))
              for a, b in zip(found.kept, found.dropped)}
    matched = set(truth_of.values())
    true_pairs = {(a, int(same[a])) for a in matched if same[a] > a and same[a] in matched}
    correct, wrong = merged & true_pairs, merged - true_pairs
    n_rois = len(m["plane"])
    left = len(true_pairs) - len(correct)
    dropped_rows = {truth_of.get(key(i)) for i in found.dropped}

    # ---- per-item causes ----
    wrongly_used = {x for pair in wrong for x in pair}
    pair_causes, root_causes = Counter(), Counter()
    pair_detail = []
    mean_w = lambda row: float(np.mean(axial_weight(z_off[row] - drift[t_plane[row]], fwhm)))  # noqa: E731
    for a, b in sorted(true_pairs - correct):
        ia, ib = merged_index[row_of[a]], merged_index[row_of[b]]
        da = (m["centroid"][ib] - m["centroid"][ia]) * META["pixel_size_um"] - found.plane_offset_um[0]
        dist = float(np.hypot(*da))
        hp = highpass(m["Fc"][[ia, ib]], config.duplicate_highpass_s * META["volume_rate_hz"])
        r = float(np.corrcoef(np.interp(times[1], times[0], hp[0]), hp[1])[0, 1])
        wmin = min(mean_w(a), mean_w(b))
        own = [float(np.corrcoef(m["Fc"][k], t_dff[t])[0, 1]) if np.ptp(t_dff[t]) > 0 else np.nan
               for k, t in ((ia, a), (ib, b))]
        cell = min(a, b)
        root_cause = ("the cell is silent (no events)" if not np.all(np.isfinite(own)) else
                      "a copy's ROI is mostly another cell's light" if {cell_of.get(row_of[a]), cell_of.get(row_of[b])}
                      != {cell} else
                      "a copy's ROI trace carries little of its cell (r with its true dF/F < 0.3)" if min(own) < 0.3
                      else "both traces follow their cell (r >= 0.3)")
        if a in wrongly_used or b in wrongly_used:
            cause = "one copy merged with another cell"
        elif dist > config.duplicate_max_distance_um:
            cause = "centroid distance > max"
        else:
            cause = "posterior < min (r %s)" % ("< 0.2" if r < 0.2 else ">= 0.2")
        pair_causes[cause] += 1
        root_causes[(cause if cause.startswith(("one copy", "centroid")) else "posterior < min") + "; " + root_cause] += 1
        pair_detail.append(dict(a=a, b=b, dist_um=dist, r=r, min_axial_weight=wmin, cause=cause, r_own=own))

    in_focus = np.abs(z_off) <= META["plane_spacing_um"] / 2
    two_plane = Counter()
    for a in np.flatnonzero((same >= 0) & (same > np.arange(same.size))):
        n_roi = int(a in matched) + int(int(same[a]) in matched)
        two_plane[("no copy is an ROI", "one copy is an ROI", "both copies are ROIs")[n_roi]] += 1
    focus_causes = Counter()
    for row in np.flatnonzero(in_focus):
        if row in matched:
            focus_causes["matched"] += 1
        elif nearest_d[row] <= MATCH_PX:
            focus_causes["ROI within 4 px taken by another row"] += 1
        elif nearest_d[row] <= 2 * MATCH_PX:
            focus_causes["nearest ROI 4-8 px"] += 1
        else:
            focus_causes["not detected (no ROI within 8 px)"] += 1
    # ROIs that detection made but the classifier/threshold dropped
    all_near = 0
    for p, s in enumerate(planes):
        trows = np.flatnonzero((t_plane == p) & in_focus)
        trows = [r for r in trows if r not in matched]
        if trows and s.n_rois:
            d = np.linalg.norm(t_cen[trows][:, None] - s.centroid_px[None], axis=2).min(1)
            all_near += int(np.sum(d <= MATCH_PX))
    drivers = np.flatnonzero(np.char.startswith(role, "driver") & in_focus)
    driver_status = Counter()
    for row in drivers:
        copies = [row] + ([int(same[row])] if same[row] >= 0 else [])
        present = [c for c in copies if c in matched and c not in dropped_rows]
        if present:
            driver_status["present"] += 1
        elif any(c in matched for c in copies):
            driver_status["matched but dropped by the merge"] += 1
        elif min(nearest_d[c] for c in copies) <= MATCH_PX:
            driver_status["ROI within 4 px assigned to another row"] += 1
        elif min(nearest_d[c] for c in copies) <= 2 * MATCH_PX:
            driver_status["nearest ROI 4-8 px"] += 1
        else:
            driver_status["not detected"] += 1
    # trace quality of matched in-focus rows: r of neuropil-corrected F with the true dF/F
    return dict(
        merges_by_light=dict(by_light), rois=n_rois, true_pairs=len(true_pairs), merged=len(merged), correct=len(correct), wrong=len(wrong),
        merged_frac=len(correct) / max(len(true_pairs), 1),
        dup_rate_before=len(true_pairs) / n_rois, dup_rate_after=left / max(n_rois - len(merged), 1),
        in_focus=int(in_focus.sum()), in_focus_matched=focus_causes["matched"] / max(int(in_focus.sum()), 1),
        in_focus_unmatched_with_unclassified_roi=all_near,
        focus_causes=dict(focus_causes), drivers=int(drivers.size), driver_status=dict(driver_status),
        pair_causes=dict(pair_causes), root_causes=dict(root_causes), two_plane_cells=dict(two_plane), model=np.round(found.model, 3).tolist(), offset_um=found.plane_offset_um.tolist(),
        missed_pairs=pair_detail,
        wrong_detail=[dict(truth=[truth_of.get(key(a), -1), truth_of.get(key(b), -1)], r=round(float(r), 3),
                           posterior=round(float(q), 3), dist_um=round(float(dd), 2))
                      for a, b, r, q, dd in zip(found.kept, found.dropped, found.correlation, found.posterior,
                                                found.distance_um)
                      if tuple(sorted((truth_of.get(key(a), -1 - a), truth_of.get(key(b), -1 - b)))) in wrong],
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 5, 6])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--extraction", type=json.loads, default={}, help="ExtractionParams overrides (JSON)")
    ap.add_argument("--neural", type=json.loads, default={}, help="NeuralFileConfig overrides (JSON)")
    ap.add_argument("--detail", action="store_true", help="print every missed pair")
    ap.add_argument("--volumes", type=int, default=FISH["n_volumes"], help="volumes per plane (default 200)")
    ap.add_argument("--fish", type=json.loads, default={}, help="ZebrafishSynthParams overrides (JSON)")
    args = ap.parse_args(argv)
    extraction = ExtractionParams(**args.extraction)
    FISH["n_volumes"] = args.volumes
    FISH.update(args.fish)
    config = NeuralFileConfig(duplicates="merge", **args.neural)
    for seed in args.seeds:
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        root = prepare(args.work, seed, extraction)
        t1 = time.perf_counter()
        res = score(root, config)
        t2 = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0
        detail = res.pop("missed_pairs")
        print(json.dumps({"seed": seed, **res, "prepare_s": round(t1 - t0, 1), "score_s": round(t2 - t1, 1),
                          "cpu_s": round(cpu, 1)}, default=float))
        if args.detail:
            for d in detail:
                print("  missed", json.dumps(d, default=float))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
