"""NoRMCorre motion correction (Pnevmatikakis & Giovannucci 2017) in PyTorch, streaming.

The paper this pipeline reproduces registered its two-photon planes with CaImAn's NoRMCorre;
this module re-implements that algorithm so that it runs batched on CPU or CUDA and streams
the movie from disk to disk (memory is bounded by ``batch_frames``, not by the movie length).

Algorithm (per frame, against a template T)
-------------------------------------------
1. **Rigid.** Phase correlation of the whole frame with T: the cross-power spectrum
   ``F conj(T)`` is whitened, low-pass filtered (Gaussian, ``smooth_sigma_px``) and inverse
   transformed; the integer peak within ``+-max_rigid_shift_px`` is refined to 1/``upsample_factor``
   px with the upsampled (matrix-multiply) DFT of Guizar-Sicairos et al. (2008), then a parabolic
   fit on the upsampled grid. Frames and template are tapered at their borders before the FFT
   so that the non-periodic edges do not pull the peak towards zero.
2. **Piecewise rigid** (``nonrigid=True``). The frame is shifted by the integer part of the
   rigid shift (exact, no interpolation), cut into overlapping patches (``patch_size_px``,
   ``patch_overlap_px``; the last patch of a row/column is aligned with the frame edge) and each
   patch is phase-correlated with the same patch of T, the integer peak searched within
   ``+-max_deviation_px`` of the rigid shift and refined to subpixel as above. Patch shifts are
   clipped to rigid +- ``max_deviation_px``.
3. **Apply.** The shift field at the patch centres is interpolated smoothly (separable cubic
   convolution, C1) to every pixel and the frame is resampled with
   :func:`torch.nn.functional.grid_sample` (bicubic, border replication):
   ``registered(y, x) = frame(y + dy(y, x), x + dx(y, x))``. Without ``nonrigid`` the field is the
   constant rigid shift (on CPU resampled by the same kernel applied separably, rows then
   columns: one set of weights per frame).

CPU paths (same arithmetic as the torch ones, measured faster on CPU): the whitening uses
numpy's complex abs (torch's is a hypot), patches are gathered by slice copies from an
edge-padded batch, rigid resampling is separable (above), and frame sums go through numpy.

0. **Bidirectional phase** (``bidi_correction``, before everything else). The line-phase
   offset of a resonant scanner's odd rows is estimated sub-pixel from the mean of the
   template sample frames of each block of ``bidi_block_frames`` (:mod:`pipeline.imaging.bidi`,
   as suite2p's ``do_bidiphase`` / NoRMCorre's ``correct_bidir``), interpolated between blocks,
   and every frame's odd rows are resampled before the rigid step. Estimates all below
   ``bidi_min_phase_px`` are recorded but not applied.

After registration, bad frames (sheared bout frames, shift outliers, low template
correlation) and the valid region are derived from the shifts (:mod:`pipeline.imaging.badframes`).

Template: the mean of ``template_frames`` frames spread evenly over the movie, refined
``template_iterations`` times by registering those frames to it (rigid in the first iteration,
piecewise rigid afterwards when ``nonrigid``) and averaging the registered frames; then the whole
movie is registered to this final template in one streaming pass of ``batch_frames`` frames.
With ``template_update: rolling`` the template follows slow change (z-drift, bleaching of
structure): after each batch it moves towards the mean of the batch's registered frames,
exponentially with a time constant of ``template_update_frames`` frames (frames far below the
batch's correlation to the template are left out); correlations are to the current template.

Sign convention (same as :mod:`pipeline.synth.zebrafish`): a shift d = (dy, dx) in px is the
estimated displacement of the content relative to the template, i.e. content observed at (y, x)
came from template position (y - dy, x - dx); the registration applies -d. Shifts are relative to
the template, which is itself offset from any unmoved reference by a constant.

Output (HDF5, written atomically): see :func:`motion_correct`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.imaging.badframes import REASONS, detect_bad_frames, valid_region
from pipeline.imaging.bidi import correct_bidi_phase, estimate_bidi_phase
from pipeline.imaging.config import NormcorreParams
from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError
from pipeline.io.h5 import write_dataset

log = logging.getLogger(__name__)

ALGORITHM = "pipeline.imaging.normcorre"
ALGORITHM_VERSION = "1.0.0"
SIGN_CONVENTION = (
    "shift (dy, dx) px = displacement of the content relative to the template: content observed at "
    "(y, x) came from template position (y - dy, x - dx); registration applied -shift"
)


# --------------------------------------------------------------------------------------
# geometry helpers (numpy, computed once per movie)
# --------------------------------------------------------------------------------------


def patch_starts(length: int, size: int, overlap: int) -> np.ndarray:
    """Start indices of patches of ``size`` px along an axis of ``length`` px with stride
    ``size - overlap``; the last patch ends at the frame edge. One patch when size >= length."""
    size = min(size, length)
    stride = size - min(overlap, size - 1)
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return np.asarray(starts, dtype=np.int64)


def _taper(n: int, width: int) -> np.ndarray:
    """1-D window: raised-cosine ramps of ``width`` px at both ends, 1 in between."""
    w = np.ones(n)
    width = min(width, n // 2)
    if width > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        w[:width] = ramp
        w[n - width:] = ramp[::-1]
    return w


def _cubic_weights(centres: np.ndarray, n_px: int) -> np.ndarray:
    """(n_px, n_nodes) matrix interpolating node values at pixel ``centres`` to every pixel
    (cubic convolution, Keys a = -0.5, on the fractional node index; constant outside)."""
    n = len(centres)
    if n == 1:
        return np.ones((n_px, 1))
    u = np.interp(np.arange(n_px, dtype=float), centres, np.arange(n, dtype=float))
    w = np.zeros((n_px, n))

    def keys(t):
        t = np.abs(t)
        return np.where(t <= 1, 1.5 * t**3 - 2.5 * t**2 + 1,
                        np.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, 0.0))

    base = np.floor(u).astype(int)
    for k in range(-1, 3):
        tap = base + k
        wk = keys(u - tap)
        np.add.at(w, (np.arange(n_px), np.clip(tap, 0, n - 1)), wk)
    return w


def _metrics_margin(p: NormcorreParams, ly: int, lx: int) -> int:
    m = p.metrics_margin_px
    if m < 0:
        m = math.ceil(p.max_rigid_shift_px + (p.max_deviation_px if p.nonrigid else 0))
    return int(min(m, ly // 4, lx // 4))


def crispness(image: np.ndarray, margin: int = 0) -> float:
    """NoRMCorre crispness: Frobenius norm of the gradient of a (mean) image, optionally
    without a ``margin`` px border. Units: image units per px."""
    img = np.asarray(image, dtype=np.float64)
    if margin > 0:
        img = img[margin:-margin, margin:-margin]
    gy, gx = np.gradient(img)
    return float(np.sqrt(np.sum(gy**2 + gx**2)))


# --------------------------------------------------------------------------------------
# the registration engine (torch, batched)
# --------------------------------------------------------------------------------------


class _Correlator:
    """Phase correlation of batches of (..., N, M) images against fixed reference(s), with an
    integer peak search within a bound and upsampled-DFT subpixel refinement.

    Only the correlation values inside the search window are ever computed: the whitened,
    low-pass filtered cross-power spectrum R (rfft half-plane) is evaluated at the window's
    integer shifts, and then on a 1/``upsample_factor`` px grid of +-0.75 px around the
    integer peak, by matrix-multiplied inverse DFTs (Guizar-Sicairos et al. 2008):
    ``c(y, x) = Re(sum_k sum_l w_l R[k, l] exp(2 pi i (k y / N + l x / M)))`` with signed
    frequencies k, l and half-plane weights w_l (1 for the DC/Nyquist column, else 2).
    """

    def __init__(self, ref: torch.Tensor, p: NormcorreParams, bound: float, device, *, window_ref: bool):
        # ref: (..., N, M) float32 reference image(s) on device. The images are always tapered;
        # tapering the reference too (window_ref) biases large shifts towards 0 (the product of
        # the two windows peaks at zero shift), so the whole-frame (rigid) correlator leaves the
        # reference untapered; patches are correlated after the integer rigid shift, where the
        # residual is small and tapering both avoids the edge artifacts of small patches.
        self.n, self.m = n, m = ref.shape[-2:]
        self.mh = m // 2 + 1
        self.p = p
        self.device = device
        self.bound = float(bound)
        by = int(min(math.floor(bound), (n - 1) // 2))
        bx = int(min(math.floor(bound), (m - 1) // 2))
        self.win = torch.as_tensor(np.outer(_taper(n, p.taper_px), _taper(m, p.taper_px)),
                                   dtype=torch.float32, device=device)
        ky = torch.fft.fftfreq(n, device=device, dtype=torch.float64)  # cycles / px
        kx = torch.fft.rfftfreq(m, device=device, dtype=torch.float64)
        lowpass = torch.exp(-2 * math.pi**2 * p.smooth_sigma_px**2 * (ky[:, None] ** 2 + kx[None, :] ** 2))
        centred = ref - ref.mean(dim=(-2, -1), keepdim=True)
        t = torch.fft.rfft2(centred * self.win if window_ref else centred).to(torch.complex128)
        wx = torch.full((self.mh,), 2.0, dtype=torch.float64, device=device)
        wx[0] = 1.0
        if m % 2 == 0:
            wx[-1] = 1.0
        # whitened reference spectrum x low-pass x half-plane weights, / (N M) for a unit peak
        if t.device.type == "cpu":  # numpy: no thread fork/join per op (costly on a loaded machine)
            tn = t.numpy()
            a = np.abs(tn)
            tn = np.conj(tn) / (a + 1e-6 * a.max(axis=(-2, -1), keepdims=True) + 1e-30)
            self.cref = torch.from_numpy((tn * (lowpass.numpy() * wx.numpy() / (n * m))).astype(np.complex64))
        else:
            t = torch.conj(t) / (t.abs() + 1e-6 * t.abs().amax(dim=(-2, -1), keepdim=True) + 1e-30)
            self.cref = (t * lowpass * wx / (n * m)).to(torch.complex64)
        self.cref_np = self.cref.numpy() if self.cref.device.type == "cpu" else None
        self.fy = ky * n  # signed integer frequencies (N,)
        self.fx = kx * m  # (Mh,)
        self.sy = torch.arange(-by, by + 1, device=device, dtype=torch.float64)  # integer search window
        self.sx = torch.arange(-bx, bx + 1, device=device, dtype=torch.float64)
        self.ey_win = self._ey(self.sy)  # (Wy, N)
        self.ex_win = self._ex(self.sx)  # (Mh, Wx)
        u = max(p.upsample_factor, 1)
        half = math.ceil(0.75 * u)
        self.off = torch.arange(-half, half + 1, device=device, dtype=torch.float64) / u  # (K,)
        self.ey_off = self._ey(self.off)  # (K, N)
        self.ex_off = self._ex(self.off)  # (Mh, K)

    def _ey(self, y: torch.Tensor) -> torch.Tensor:
        return torch.exp(2j * math.pi * y[:, None] * self.fy[None, :] / self.n).to(torch.complex64)

    def _ex(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(2j * math.pi * self.fx[:, None] * x[None, :] / self.m).to(torch.complex64)

    def cross_power(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, M) images -> whitened, filtered cross-power (B, N, Mh) complex64."""
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        x *= self.win
        f = torch.fft.rfft2(x)
        if f.device.type == "cpu":
            # numpy's complex abs and complex x real products are several times faster than
            # torch's on CPU (torch's abs is a hypot); same arithmetic, in place where possible
            fn = f.numpy()
            a = np.abs(fn)
            a += 1e-6 * a.max(axis=(-2, -1), keepdims=True) + 1e-30
            np.reciprocal(a, out=a)
            fn *= self.cref_np
            fn *= a
            return f.reshape(-1, self.n, self.mh)
        a = f.abs()
        a += 1e-6 * a.amax(dim=(-2, -1), keepdim=True) + 1e-30
        r = f * self.cref
        torch.view_as_real(r).div_(a.unsqueeze(-1))  # real / real per component: no complex division
        return r.reshape(-1, self.n, self.mh)

    def shifts(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, M) images -> (..., 2) float64 shifts d (px) with x(y) ~ ref(y - d),
        |d| <= bound per axis."""
        lead = x.shape[:-2]
        r = self.cross_power(x)
        b = r.shape[0]
        # correlation at the integer shifts of the search window: (B, Wy, Wx)
        cc = torch.matmul(self.ey_win, torch.matmul(r, self.ex_win)).real
        wy, wx = cc.shape[-2:]
        flat = cc.reshape(b, -1).argmax(dim=1)
        iy, ix = flat // wx, flat % wx
        if self.p.upsample_factor <= 1:
            d = torch.stack([self.sy[iy], self.sx[ix]], dim=-1)
        else:
            d = self._refine(r, iy, ix)
        return d.clamp(-self.bound, self.bound).reshape(*lead, 2)

    def _refine(self, r: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        """Upsampled DFT on a (K, K) grid of 1/U px spacing around the integer peak, then a
        parabolic fit through the grid maximum and its neighbours."""
        u = self.p.upsample_factor
        ey = self.ey_win[iy][:, None, :] * self.ey_off[None]  # (B, K, N): exp(2 pi i k (p + o) / N)
        ex = self.ex_win[:, ix].T[:, :, None] * self.ex_off[None]  # (B, Mh, K)
        up = torch.matmul(torch.matmul(ey, r), ex).real  # (B, K, K)
        b, k, _ = up.shape
        flat = up.reshape(b, -1).argmax(dim=1)
        jy, jx = flat // k, flat % k
        jyc, jxc = jy.clamp(1, k - 2), jx.clamp(1, k - 2)
        ar = torch.arange(b, device=self.device)

        def parab(c0, cm, cp, inside):
            den = cm - 2 * c0 + cp
            ok = inside & (den < 0)
            frac = 0.5 * (cm - cp) / torch.where(ok, den, torch.ones_like(den))
            return torch.where(ok, frac, torch.zeros_like(frac)).clamp(-0.5, 0.5).to(torch.float64)

        fy = parab(up[ar, jyc, jx], up[ar, jyc - 1, jx], up[ar, jyc + 1, jx], jy == jyc)
        fx = parab(up[ar, jy, jxc], up[ar, jy, jxc - 1], up[ar, jy, jxc + 1], jx == jxc)
        dy = self.sy[iy] + self.off[jy] + fy / u
        dx = self.sx[ix] + self.off[jx] + fx / u
        return torch.stack([dy, dx], dim=-1)


class _Registrar:
    """Registers batches of frames (B, Ly, Lx) to one template; geometry precomputed."""

    def __init__(self, template: np.ndarray, p: NormcorreParams, device: torch.device):
        self.p = p
        self.device = device
        self.ly, self.lx = template.shape
        ly, lx = self.ly, self.lx
        t = torch.as_tensor(template, dtype=torch.float32, device=device)
        self.template = t
        self.rigid = _Correlator(t, p, p.max_rigid_shift_px, device, window_ref=False)
        ps_y, ps_x = min(p.patch_size_px, ly), min(p.patch_size_px, lx)
        self.y0 = patch_starts(ly, p.patch_size_px, p.patch_overlap_px)
        self.x0 = patch_starts(lx, p.patch_size_px, p.patch_overlap_px)
        self.ps = (ps_y, ps_x)
        self.iy = torch.as_tensor(self.y0[:, None] + np.arange(ps_y)[None, :], device=device)  # (npy, ps)
        self.ix = torch.as_tensor(self.x0[:, None] + np.arange(ps_x)[None, :], device=device)  # (npx, ps)
        if p.nonrigid:
            tp = self._patches(t[None])[0]  # (npy, npx, ps, ps)
            self.patch = _Correlator(tp, p, p.max_deviation_px + 1.0, device, window_ref=True)
        cy = self.y0 + (ps_y - 1) / 2.0
        cx = self.x0 + (ps_x - 1) / 2.0
        self.centres = (cy, cx)
        self.wy = torch.as_tensor(_cubic_weights(cy, ly), dtype=torch.float32, device=device)  # (Ly, npy)
        self.wx = torch.as_tensor(_cubic_weights(cx, lx), dtype=torch.float32, device=device)  # (Lx, npx)
        gy, gx = torch.meshgrid(torch.arange(ly, device=device, dtype=torch.float32),
                                torch.arange(lx, device=device, dtype=torch.float32), indexing="ij")
        self.gy, self.gx = gy, gx

    @property
    def n_patches(self) -> tuple[int, int]:
        return len(self.y0), len(self.x0)

    def _patches(self, x: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """(B, Ly, Lx) -> (B, npy, npx, ps_y, ps_x) patches of the frames shifted by the integer
        shifts ``d`` (B, 2) (patch pixel (y, x) taken from frame (y + dy, x + dx), clamped to the
        frame: border replication), or unshifted when ``d`` is None."""
        if d is None:
            return x[:, self.iy[:, None, :, None], self.ix[None, :, None, :]]
        if x.device.type == "cpu":
            return self._patches_cpu(x, d)
        b = x.shape[0]
        iy = (self.iy[None] + d[:, 0, None, None]).clamp(0, self.ly - 1)  # (B, npy, ps)
        ix = (self.ix[None] + d[:, 1, None, None]).clamp(0, self.lx - 1)  # (B, npx, ps)
        ar = torch.arange(b, device=self.device)[:, None, None, None, None]
        return x[ar, iy[:, :, None, :, None], ix[:, None, :, None, :]]

    def _patches_cpu(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """:meth:`_patches` on CPU by slice copies: the batch is edge-padded once by the largest
        |integer shift| (border replication, as the clamped index), then every patch of every
        frame is one contiguous slice copy (no per-pixel index tensors)."""
        b = x.shape[0]
        npy, npx = self.n_patches
        ps_y, ps_x = self.ps
        dn = d.cpu().numpy().astype(np.int64)
        m = int(np.abs(dn).max(initial=0))
        xn = x.numpy()
        xp = np.pad(xn, ((0, 0), (m, m), (m, m)), mode="edge") if m else xn
        out = np.empty((b, npy, npx, ps_y, ps_x), dtype=xn.dtype)
        for k in range(b):
            oy, ox = m + dn[k, 0], m + dn[k, 1]
            for i, y0 in enumerate(self.y0):
                rows = xp[k, oy + y0:oy + y0 + ps_y]
                for j, x0 in enumerate(self.x0):
                    out[k, i, j] = rows[:, ox + x0:ox + x0 + ps_x]
        return torch.from_numpy(out)

    def estimate(self, x: torch.Tensor, nonrigid: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, Ly, Lx) float32 -> rigid (B, 2) float64, patch shifts (B, npy, npx, 2) or None."""
        rigid = self.rigid.shifts(x)
        if not nonrigid:
            return rigid, None
        ri = torch.round(rigid).to(torch.long)
        resid = self.patch.shifts(self._patches(x, ri))  # (B, npy, npx, 2), relative to ri
        total = ri[:, None, None, :].to(torch.float64) + resid
        dev = self.p.max_deviation_px
        total = torch.maximum(torch.minimum(total, rigid[:, None, None, :] + dev), rigid[:, None, None, :] - dev)
        return rigid, total

    def apply(self, x: torch.Tensor, rigid: torch.Tensor, patch: torch.Tensor | None) -> torch.Tensor:
        """Resample x (B, Ly, Lx) so that registered(y, x) = frame(y + dy, x + dx)."""
        if patch is None and x.device.type == "cpu" and self.p.interpolation in _SEPARABLE:
            return _shift_separable(x, rigid, self.p.interpolation)
        b = x.shape[0]
        grid = torch.empty((b, self.ly, self.lx, 2), dtype=torch.float32, device=x.device)  # (x, y) normalised
        for axis, (g, scale) in enumerate([(self.gx, 2.0 / max(self.lx - 1, 1)), (self.gy, 2.0 / max(self.ly - 1, 1))]):
            shift_axis = 1 - axis  # shifts are (dy, dx)
            if patch is None:
                field = rigid[:, shift_axis].to(torch.float32)[:, None, None]
            else:
                field = self.wy @ patch[..., shift_axis].to(torch.float32) @ self.wx.T  # (B, Ly, Lx)
            torch.mul(g[None] + field, scale, out=grid[..., axis]).sub_(1.0)
        out = F.grid_sample(x[:, None], grid, mode=self.p.interpolation, padding_mode="border", align_corners=True)
        return out[:, 0]


def _taps(frac: float, mode: str) -> tuple[int, list[float]]:
    """First tap offset and weights of ``grid_sample``'s 1-D kernel at fractional position
    ``frac`` in [0, 1): bilinear (2 taps) or bicubic (4 taps, cubic convolution A = -0.75 as
    in PyTorch)."""
    if mode == "bilinear":
        return 0, [1.0 - frac, frac]
    a = -0.75

    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return -1, [far(frac + 1), near(frac), near(1 - frac), far(2 - frac)]


_SEPARABLE = ("bilinear", "bicubic")


def _shift_separable(x: torch.Tensor, rigid: torch.Tensor, mode: str) -> torch.Tensor:
    """Rigid resampling on CPU, ``out(y, x) = frame(y + dy, x + dx)`` with border replication:
    ``grid_sample``'s bilinear/bicubic kernel is separable and, for one shift per frame, has
    the same weights at every pixel, so it is a few weighted slice sums per axis of the
    edge-padded frame (taps clamped to the frame, as grid_sample's border mode)."""
    xn = x.numpy()
    b, ly, lx = xn.shape
    d = rigid.cpu().numpy()
    out = np.empty_like(xn)
    for k in range(b):
        fy, fx = math.floor(d[k, 0]), math.floor(d[k, 1])
        oy, wy = _taps(float(d[k, 0] - fy), mode)
        ox, wx = _taps(float(d[k, 1] - fx), mode)
        # output row y reads input rows y + fy + oy + i (i < len(wy)), clamped to [0, ly - 1]
        py0, py1 = max(0, -(fy + oy)), max(0, fy + oy + len(wy) - 1)
        px0, px1 = max(0, -(fx + ox)), max(0, fx + ox + len(wx) - 1)
        src = np.pad(xn[k], ((py0, py1), (px0, px1)), mode="edge")
        y0 = fy + oy + py0
        rows = wy[0] * src[y0:y0 + ly]
        for i in range(1, len(wy)):
            rows += wy[i] * src[y0 + i:y0 + i + ly]
        x0 = fx + ox + px0
        acc = out[k]
        np.multiply(rows[:, x0:x0 + lx], wx[0], out=acc)
        for i in range(1, len(wx)):
            acc += wx[i] * rows[:, x0 + i:x0 + i + lx]
    return torch.from_numpy(out)


def _sum_frames(x: torch.Tensor) -> torch.Tensor:
    """Sum of frames (B, Ly, Lx) over B in float64. On CPU with numpy: torch's float64 reduction
    of a float32 tensor along its first axis is ~10x slower."""
    if x.device.type == "cpu":
        return torch.from_numpy(x.numpy().sum(0, dtype=np.float64))
    return x.sum(0, dtype=torch.float64)


def _corr(x: torch.Tensor, t: torch.Tensor, margin: int) -> torch.Tensor:
    """Pearson correlation of each frame (B, Ly, Lx) with t (Ly, Lx) inside the margin."""
    if margin > 0:
        x = x[:, margin:-margin, margin:-margin]
        t = t[margin:-margin, margin:-margin]
    x = x.reshape(x.shape[0], -1)
    x = x - x.mean(dim=1, keepdim=True)
    t = t.reshape(-1) - t.mean()
    return ((x @ t) / (x.norm(dim=1) * t.norm() + 1e-30)).to(torch.float64)


# --------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------


class _TiffErrors(logging.Handler):
    """Collects ERROR records that tifffile logs instead of raising."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _Stack:
    """Chunked reader of a multipage 2-D TIFF (one page per frame), with input checks."""

    def __init__(self, path: Path):
        self.path = path
        errors = _TiffErrors()
        tlog = logging.getLogger("tifffile")
        tlog.addHandler(errors)
        try:
            self.tf = tifffile.TiffFile(path)
            pages = self.tf.pages
            self.n = len(pages)  # walks the IFD chain (offsets only, no pixel data)
            if errors.messages:  # tifffile logs (does not raise) a broken chain, e.g. a truncated file
                raise InputDataError(path, f"corrupt TIFF: {errors.messages[0]}")
            if self.n == 0:
                raise InputDataError(path, "TIFF has no pages")
            first = pages[0]
            shape, dtype = tuple(first.shape), first.dtype
        except InputDataError:
            self.close()
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ...
            self.close()
            raise InputDataError(path, f"cannot read TIFF ({type(exc).__name__}: {exc})") from exc
        finally:
            tlog.removeHandler(errors)
        if len(shape) != 2:
            self.close()
            raise InputDataError(path, f"pages must be 2-D frames, page 0 has shape {shape}")
        if shape[0] < 8 or shape[1] < 8:
            self.close()
            raise InputDataError(path, f"frames of {shape} px are too small (need >= 8 x 8)")
        self.shape, self.dtype = shape, dtype

    def read(self, idx) -> np.ndarray:
        """Frames at indices ``idx`` (sorted ints) as float32 (k, Ly, Lx)."""
        idx = [int(i) for i in idx]
        try:
            out = np.empty((len(idx), *self.shape), dtype=np.float32)
            for j, i in enumerate(idx):
                a = self.tf.pages[i].asarray()
                if a.shape != self.shape:
                    raise InputDataError(self.path, f"page {i} has shape {a.shape}, page 0 has {self.shape}")
                out[j] = a
            return out
        except InputDataError:
            raise
        except Exception as exc:
            raise InputDataError(self.path, f"cannot read TIFF page ({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        tf = getattr(self, "tf", None)
        if tf is not None:
            tf.close()


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return dev


def _batches(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(a + size, n)


#: Largest per-step working tensor (bytes): frames are processed in sub-batches so that every
#: large temporary stays below glibc's mmap threshold (see :func:`_tune_malloc`).
_STEP_BYTES = 24 * 2**20


def _compute_step(reg: "_Registrar", p: NormcorreParams) -> int:
    """Frames per compute step: batch_frames, capped so one step's frame or patch stack
    (float32) is at most ``_STEP_BYTES``."""
    npy, npx = reg.n_patches
    per_frame = 4 * max(reg.ly * reg.lx, npy * npx * reg.ps[0] * reg.ps[1] if p.nonrigid else 0)
    return int(max(1, min(p.batch_frames, _STEP_BYTES // per_frame)))


def _tune_malloc() -> None:
    """Keep large temporaries on the glibc heap instead of fresh mmaps.

    Every step allocates and frees tens of MB of tensors; with glibc's default dynamic mmap
    threshold each one is a new mmap whose pages are faulted in and zeroed again, which
    halves throughput on CPU. Raising the threshold to its maximum (32 MiB) and the trim
    threshold to 256 MiB lets freed memory be reused (peak RSS stays bounded by the step
    size). No-op where mallopt is unavailable (non-glibc platforms).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 2**20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def bidi_phases(sample: np.ndarray, idx: np.ndarray, n_frames: int, p: NormcorreParams
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bidirectional phase per frame (n_frames,) px from the template sample (k, Ly, Lx) taken
    at frames ``idx``: one estimate (:func:`pipeline.imaging.bidi.estimate_bidi_phase`) from the
    mean of the sample frames in each block of ``bidi_block_frames``, linearly interpolated
    between block centres (constant beyond). Returns (per-frame phase, block centres, block
    estimates); the per-frame phase is all 0 when every |estimate| < ``bidi_min_phase_px``."""
    n_blocks = max(1, math.ceil(n_frames / p.bidi_block_frames))
    block = np.minimum(idx * n_blocks // n_frames, n_blocks - 1)
    centres, estimates = [], []
    for b in np.unique(block):
        members = idx[block == b]
        estimates.append(estimate_bidi_phase(sample[block == b].mean(0), max_shift_px=p.bidi_max_shift_px))
        centres.append(float(members.mean()))
    centres, estimates = np.asarray(centres), np.asarray(estimates)
    if np.all(np.abs(estimates) < p.bidi_min_phase_px):
        return np.zeros(n_frames), centres, estimates
    return np.interp(np.arange(n_frames), centres, estimates), centres, estimates


def build_template(stack: _Stack, p: NormcorreParams, device: torch.device,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Template (Ly, Lx) float32 from ``template_frames`` evenly spaced frames, refined by
    ``template_iterations`` register-and-average passes (see module docstring); with
    ``bidi_correction`` the sample frames are phase-corrected first (:func:`bidi_phases`).
    Returns (template, per-frame bidi phase (T,), block centres, block estimates)."""
    k = min(p.template_frames, stack.n)
    idx = np.unique(np.round(np.linspace(0, stack.n - 1, k)).astype(int))
    sample_np = stack.read(idx)  # at most template_frames frames
    if p.bidi_correction:
        phase, centres, estimates = bidi_phases(sample_np, idx, stack.n, p)
        if np.any(phase):
            sample_np = correct_bidi_phase(sample_np, phase[idx])
    else:
        phase, centres, estimates = np.zeros(stack.n), np.zeros(0), np.zeros(0)
    sample = torch.as_tensor(sample_np, device=device)
    template = sample.mean(0)
    for it in range(p.template_iterations):
        reg = _Registrar(template.cpu().numpy(), p, device)
        nonrigid = p.nonrigid and it > 0
        acc = torch.zeros_like(template, dtype=torch.float64)
        for a, b in _batches(len(idx), _compute_step(reg, p)):
            rigid, patch = reg.estimate(sample[a:b], nonrigid)
            acc += _sum_frames(reg.apply(sample[a:b], rigid, patch))
        template = (acc / len(idx)).to(torch.float32)
    return template.cpu().numpy(), phase, centres, estimates


def _rolled_template(template: torch.Tensor, registered: torch.Tensor, corr_after: np.ndarray,
                     tau_frames: int) -> torch.Tensor:
    """Exponential template update by one batch: ``w T + (1 - w) mean(good registered frames)``
    with ``w = (1 - 1/tau_frames) ** n_good``; frames whose correlation to T is more than 3
    robust sds below the batch median (sheared, out of focus) are left out."""
    med = np.median(corr_after)
    mad = 1.4826 * np.median(np.abs(corr_after - med))
    good = np.flatnonzero(corr_after >= med - 3.0 * mad)
    w = (1.0 - 1.0 / tau_frames) ** len(good)
    idx = torch.as_tensor(good, device=registered.device)
    return (w * template + (1.0 - w) * registered[idx].mean(0)).to(torch.float32)


def _write_frame_quality(f: h5py.File, reg: "_Registrar", patch: np.ndarray, reason: np.ndarray, shear: np.ndarray,
                         bidi: np.ndarray, bidi_centres: np.ndarray, bidi_estimates: np.ndarray,
                         device: torch.device) -> None:
    """Bad frames, valid region and bidirectional phase datasets of the output file."""
    write_dataset(f, "bad_frame", reason != 0, "bool", "frame whose registration is not trusted (suite2p badframes)")
    d = write_dataset(f, "bad_frame_reason", reason, "bit mask",
                      "why a frame is bad: " + ", ".join(f"{b} = {r}" for b, r in REASONS.items()))
    d.attrs["reasons_json"] = json.dumps({str(b): r for b, r in REASONS.items()})
    write_dataset(f, "shear_score_px", shear, "px",
                  "top-to-bottom difference of patch shifts beyond the slow non-rigid field (pipeline.imaging.badframes)")
    write_dataset(f, "bidi_phase_px", bidi, "px",
                  "bidirectional phase applied to each frame: odd rows resampled at x + phase before registration")
    write_dataset(f, "bidi_block_center_frame", bidi_centres, "frame", "frame index of each block's phase estimate")
    write_dataset(f, "bidi_block_phase_px", bidi_estimates, "px", "phase estimated in each block (mean of its template frames)")
    good = np.flatnonzero(reason == 0)
    lo = torch.full((2, reg.ly, reg.lx), math.inf, device=device)
    hi = torch.full((2, reg.ly, reg.lx), -math.inf, device=device)
    # the per-pixel extremes of the shift fields over the good frames; in chunks of frames
    # whose fields stay small (cache-sized on CPU) instead of one (256, Ly, Lx) tensor per chunk
    chunk = max(1, (4 * 2**20) // (4 * reg.ly * reg.lx))
    for a, b in _batches(len(good), chunk):
        pf = torch.as_tensor(patch[good[a:b]], dtype=torch.float32, device=device)
        for axis, g in enumerate((reg.gy, reg.gx)):
            field = reg.wy @ (pf[..., axis] @ reg.wx.T)  # (k, Ly, Lx) shift field (grid added after)
            mn, mx = torch.aminmax(field, dim=0)
            torch.minimum(lo[axis], mn, out=lo[axis])
            torch.maximum(hi[axis], mx, out=hi[axis])
    lo += torch.stack([reg.gy, reg.gx])
    hi += torch.stack([reg.gy, reg.gx])
    lo, hi = lo.cpu().numpy(), hi.cpu().numpy()
    reach = float(np.abs(bidi).max(initial=0.0))  # odd rows were resampled at x + phase first
    valid = valid_region(np.stack([lo[0], hi[0]]), np.stack([lo[1] - reach, hi[1] + reach]), reg.ly, reg.lx)
    write_dataset(f, "valid_region", valid, "bool",
                  "pixels whose registered value came from inside the field of view in every good frame")


# --------------------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------------------


def motion_correct(stack_path, out_path, params: NormcorreParams | None = None, *,
                   progress: bool = True) -> dict[str, Any]:
    """Register a multipage uint16 TIFF (one page per frame) and write an HDF5 file.

    Streams ``params.batch_frames`` frames at a time from ``stack_path`` to ``out_path``
    (written atomically: nothing is left at ``out_path`` on failure). Bad input (unreadable
    or corrupt TIFF, pages that are not 2-D frames of one shape) raises
    :class:`~pipeline.io.errors.InputDataError` naming the file.

    HDF5 datasets (all with ``units`` and ``description`` attrs; T frames, Ly x Lx px, P = npy x npx
    patches):

    * ``registered`` (T, Ly, Lx) float32 (or uint16), chunked one frame per chunk;
    * ``rigid_shift_px`` (T, 2) (dy, dx) px, displacement of the content relative to the template
      (sign convention of :mod:`pipeline.synth.zebrafish`; the registration applied -shift);
    * ``patch_shift_px`` (T, npy, npx, 2) (dy, dx) px per patch, rigid included (same convention;
      equals rigid broadcast when ``nonrigid`` is off);
    * ``patch_bounds_px`` (npy, npx, 4) int (y0, y1, x0, x1) half-open patch bounds;
      ``patch_center_px`` (npy, npx, 2) (y, x) patch centres;
    * ``template`` (Ly, Lx) float32; ``mean_raw`` and ``mean_registered`` (Ly, Lx) float32;
    * ``corr_to_template_before`` / ``corr_to_template_after`` (T,) Pearson r of raw / registered
      frames with the template, ``metrics_margin_px`` border excluded.

    * ``bad_frame`` (T,) bool, ``bad_frame_reason`` (T,) uint8 bit mask (1 shift_outlier,
      2 low_correlation, 4 shear; attr ``reasons_json``), ``shear_score_px`` (T,) px;
    * ``valid_region`` (Ly, Lx) bool: registered pixels that came from inside the field of
      view in every good frame;
    * ``bidi_phase_px`` (T,) px applied to each frame's odd rows (0 = none);
      ``bidi_block_center_frame`` / ``bidi_block_phase_px`` (blocks,) the estimates.

    File attrs: ``params_json``, ``source_path``, ``device``, ``algorithm``, ``sign_convention``,
    ``crispness_before`` / ``crispness_after`` (Frobenius norm of the gradient of the mean raw /
    registered image, same border excluded), ``metrics_margin_px``, ``n_frames``, ``n_bad_frames``,
    ``bidi_phase_mean_px``.

    Returns a dict of summary metrics (also the file attrs above) and timings.
    """
    p = params or NormcorreParams()
    stack_path, out_path = Path(stack_path), Path(out_path)
    device = _resolve_device(p.device)
    if device.type == "cpu":
        _tune_malloc()
    t_start = time.perf_counter()
    stack = _Stack(stack_path)
    try:
        n, (ly, lx) = stack.n, stack.shape
        template, bidi, bidi_centres, bidi_estimates = build_template(stack, p, device)
        t_template = time.perf_counter() - t_start
        reg = _Registrar(template, p, device)
        npy, npx = reg.n_patches
        step = _compute_step(reg, p)
        margin = _metrics_margin(p, ly, lx)
        tmpl_t = reg.template
        sum_raw = torch.zeros((ly, lx), dtype=torch.float64, device=device)
        sum_reg = torch.zeros_like(sum_raw)
        out_dtype = np.float32 if p.output_dtype == "float32" else np.uint16
        with atomic_paths(out_path) as (tmp,):
            with h5py.File(tmp, "w") as f:
                d_reg = write_dataset(f, "registered", None, "ADU" if out_dtype == np.uint16 else "ADU (float)",
                            "registered movie: registered(y, x) = raw(y + dy(y, x), x + dx(y, x))",
                            shape=(n, ly, lx), dtype=out_dtype, chunks=(1, ly, lx))
                d_rig = write_dataset(f, "rigid_shift_px", None, "px",
                            "rigid (dy, dx) per frame: displacement of the content relative to the template; "
                            "registration applied -shift", shape=(n, 2), dtype=np.float64)
                d_pat = write_dataset(f, "patch_shift_px", None, "px",
                            "piecewise-rigid (dy, dx) per frame and patch, rigid included; same convention",
                            shape=(n, npy, npx, 2), dtype=np.float64)
                d_cb = write_dataset(f, "corr_to_template_before", None, "1",
                           "Pearson r of each raw frame with the template (metrics_margin_px border excluded)",
                           shape=(n,), dtype=np.float64)
                d_ca = write_dataset(f, "corr_to_template_after", None, "1",
                           "Pearson r of each registered frame with the template (same border excluded)",
                           shape=(n,), dtype=np.float64)
                for a, b in tqdm(list(_batches(n, p.batch_frames)), desc=f"normcorre {stack_path.name}",
                                 unit="batch", disable=not progress):
                    frames = stack.read(range(a, b))
                    if np.any(bidi[a:b]):
                        frames = correct_bidi_phase(frames, bidi[a:b])
                    x = torch.as_tensor(frames, device=device)
                    y = torch.empty_like(x)
                    rigid = torch.empty((b - a, 2), dtype=torch.float64, device=device)
                    patch = torch.empty((b - a, npy, npx, 2), dtype=torch.float64, device=device)
                    for c0, c1 in _batches(b - a, step):  # compute in sub-batches (bounded tensors)
                        r, pt = reg.estimate(x[c0:c1], p.nonrigid)
                        y[c0:c1] = reg.apply(x[c0:c1], r, pt)
                        rigid[c0:c1] = r
                        patch[c0:c1] = r[:, None, None, :] if pt is None else pt
                    sum_raw += _sum_frames(x)
                    sum_reg += _sum_frames(y)
                    d_cb[a:b] = _corr(x, tmpl_t, margin).cpu().numpy()
                    d_ca[a:b] = corr_after = _corr(y, tmpl_t, margin).cpu().numpy()
                    if p.template_update == "rolling":
                        reg = _Registrar(_rolled_template(tmpl_t, y, corr_after, p.template_update_frames)
                                         .cpu().numpy(), p, device)
                        tmpl_t = reg.template
                    d_rig[a:b] = rigid.cpu().numpy()
                    d_pat[a:b] = patch.cpu().numpy()
                    y = y.cpu().numpy()
                    if out_dtype == np.uint16:
                        y = np.clip(np.rint(y), 0, 65535).astype(np.uint16)
                    d_reg[a:b] = y
                mean_raw = (sum_raw / n).to(torch.float32).cpu().numpy()
                mean_reg = (sum_reg / n).to(torch.float32).cpu().numpy()
                write_dataset(f, "template", template.astype(np.float32), "ADU",
                              "template the frames were registered to (the first one with template_update rolling)")
                if p.template_update == "rolling":
                    write_dataset(f, "template_final", tmpl_t.cpu().numpy(), "ADU", "rolling template after the last batch")
                write_dataset(f, "mean_raw", mean_raw, "ADU", "mean of the raw frames")
                write_dataset(f, "mean_registered", mean_reg, "ADU", "mean of the registered frames")
                y0, x0 = reg.y0, reg.x0
                ps_y, ps_x = reg.ps
                bounds = np.zeros((npy, npx, 4), dtype=np.int64)
                bounds[..., 0] = y0[:, None]
                bounds[..., 1] = y0[:, None] + ps_y
                bounds[..., 2] = x0[None, :]
                bounds[..., 3] = x0[None, :] + ps_x
                write_dataset(f, "patch_bounds_px", bounds, "px", "(y0, y1, x0, x1) half-open bounds of each patch")
                cy, cx = reg.centres
                centre = np.stack(np.broadcast_arrays(cy[:, None], cx[None, :]), axis=-1)
                write_dataset(f, "patch_center_px", centre, "px", "(y, x) centre of each patch")
                cr_before, cr_after = crispness(mean_raw, margin), crispness(mean_reg, margin)
                cb, ca = d_cb[()], d_ca[()]
                reason, shear = detect_bad_frames(
                    d_rig[()], d_pat[()], ca, reg.centres[0], ly, max_shear_px=p.bad_frame_max_shear_px,
                    max_shift_jump_px=p.bad_frame_max_shift_jump_px, corr_mads=p.bad_frame_corr_mads,
                    window_frames=p.bad_frame_window_frames)
                _write_frame_quality(f, reg, d_pat[()], reason, shear, bidi, bidi_centres, bidi_estimates, device)
                summary = {
                    "n_frames": int(n),
                    "frame_shape": [int(ly), int(lx)],
                    "n_patches": [int(npy), int(npx)],
                    "device": str(device),
                    "metrics_margin_px": int(margin),
                    "crispness_before": cr_before,
                    "crispness_after": cr_after,
                    "mean_corr_to_template_before": float(cb.mean()),
                    "mean_corr_to_template_after": float(ca.mean()),
                    "max_abs_rigid_shift_px": float(np.abs(d_rig[()]).max()),
                    "n_bad_frames": int(np.count_nonzero(reason)),
                    "bidi_phase_mean_px": float(bidi.mean()),
                }
                for k, v in summary.items():
                    f.attrs[k] = v if not isinstance(v, list) else np.asarray(v)
                f.attrs["params_json"] = json.dumps(p.to_dict(), sort_keys=True)
                f.attrs["source_path"] = os.fspath(stack_path)
                f.attrs["algorithm"] = ALGORITHM
                f.attrs["algorithm_version"] = ALGORITHM_VERSION
                f.attrs["sign_convention"] = SIGN_CONVENTION
    finally:
        stack.close()
    elapsed = time.perf_counter() - t_start
    summary.update(seconds_total=elapsed, seconds_template=t_template, frames_per_s=n / elapsed)
    log.info("normcorre: %s -> %s, %d frames in %.1f s on %s", stack_path, out_path, n, elapsed, device)
    return summary
