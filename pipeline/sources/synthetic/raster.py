"""A small vectorised numpy triangle rasteriser with a depth buffer.

    frags = fragments(u, v, tris, box, ss)       # every (pixel, triangle) pair whose pixel centre is inside
    win = resolve(frags.pix, frags.depth(z), n)  # the nearest fragment of every pixel

Pixel (i, j) of the image has its centre at (i, j); with supersampling `ss` > 1 the box is
sampled on an ss x ss grid of sub-pixel centres per pixel, at i + (k + 0.5) / ss - 0.5. Screen
barycentric coordinates interpolate every vertex attribute (affine interpolation: exact for
orthographic projection, a close approximation for the small triangles of a distant head under
perspective). All triangles are processed at once: each one expands into the samples of its
bounding box, which are kept when inside (edge functions) - cheap for the many small triangles of
a head at dataset resolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Fragments:
    pix: np.ndarray  # (M,) flat sample index in the box grid (row-major, width bw * ss)
    tri: np.ndarray  # (M,) triangle index
    bary: np.ndarray  # (3, M) barycentric weights of the triangle's vertices
    shape: tuple  # (rows, cols) of the sample grid

    def interp(self, tris: np.ndarray, attr: np.ndarray) -> np.ndarray:
        """Vertex attribute (N,) or (N, C) interpolated at the fragments: (M,) or (M, C)."""
        idx = np.take(tris, self.tri, axis=0)  # np.take: the same copy as fancy indexing, faster
        a = np.take(attr, idx, axis=0)  # (M, 3) or (M, 3, C)
        if a.ndim == 2:
            return np.einsum("mk,km->m", a, self.bary)
        return np.einsum("mkc,km->mc", a, self.bary)

    def take(self, keep: np.ndarray) -> "Fragments":
        """The fragments at the indices `keep`, or where the boolean mask `keep` is true."""
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        return Fragments(np.take(self.pix, keep), np.take(self.tri, keep), np.take(self.bary, keep, axis=1), self.shape)


def fragments(u: np.ndarray, v: np.ndarray, tris: np.ndarray, box: tuple, ss: int = 1) -> Fragments:
    """Samples of the box (x0, y0, x1, y1: pixel columns x0..x1-1, rows y0..y1-1) covered by the
    triangles (T, 3) with vertex screen positions u (columns), v (rows).

    Scan-line: every triangle is split into its sample rows, and every row into the span of
    samples inside all three edges, so only covered samples are ever generated."""
    x0, y0, x1, y1 = box
    cols, rows = (x1 - x0) * ss, (y1 - y0) * ss
    # vertex positions in sample units: sample (a, b) has its centre at (a, b)
    su = (u - x0 + 0.5) * ss - 0.5
    sv = (v - y0 + 0.5) * ss - 0.5
    tris_t = np.asarray(tris).T
    tu, tv = su[tris_t], sv[tris_t]  # (3, T): one contiguous row per vertex
    area = (tu[1] - tu[0]) * (tv[2] - tv[0]) - (tv[1] - tv[0]) * (tu[2] - tu[0])
    lo_v = np.maximum(np.ceil(np.minimum(np.minimum(tv[0], tv[1]), tv[2])), 0).astype(np.int64)
    hi_v = np.minimum(np.floor(np.maximum(np.maximum(tv[0], tv[1]), tv[2])), rows - 1).astype(np.int64)
    lo_u = np.maximum(np.ceil(np.minimum(np.minimum(tu[0], tu[1]), tu[2])), 0)
    hi_u = np.minimum(np.floor(np.maximum(np.maximum(tu[0], tu[1]), tu[2])), cols - 1)
    nrow = hi_v - lo_v + 1
    ok = (nrow > 0) & (hi_u >= lo_u) & (np.abs(area) > 1e-12)
    ids = np.flatnonzero(ok)
    nrow = nrow[ids]
    empty = Fragments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((3, 0)), (rows, cols))
    if ids.size == 0:
        return empty
    # per triangle and edge i (opposite vertex i): b_i(x, y) = A_i x + B_i y + C_i, the barycentric
    # weight of vertex i (positive inside, whatever the winding)
    t_u, t_v, inv = tu[:, ids], tv[:, ids], 1.0 / area[ids]
    coef = []
    for j, k in ((1, 2), (2, 0), (0, 1)):
        A = -(t_v[k] - t_v[j]) * inv
        B = (t_u[k] - t_u[j]) * inv
        coef.append((A, B, -(A * t_u[j] + B * t_v[j])))
    # rows of every triangle (integer row index ry_i; starts: first row of each triangle in the list)
    starts = np.cumsum(nrow) - nrow
    rloc = np.repeat(np.arange(ids.size), nrow)
    ry_i = np.arange(rloc.size) + (lo_v[ids] - starts)[rloc]
    ry = ry_i.astype(np.float64)
    xl = np.full(rloc.size, -np.inf)
    xr = np.full(rloc.size, np.inf)
    rowA, rowE = [], []
    for A, B, Cc in coef:
        Ar = A[rloc]
        e = B[rloc] * ry
        e += Cc[rloc]  # b_i at x = 0 on this row
        with np.errstate(divide="ignore", invalid="ignore"):
            cut = np.negative(e)
            cut /= Ar
        np.maximum(xl, cut, out=xl, where=Ar > 0)
        np.minimum(xr, cut, out=xr, where=Ar < 0)
        np.copyto(xr, -np.inf, where=(Ar == 0) & (e < 0))
        rowA.append(Ar)
        rowE.append(e)
    xl -= 1e-9
    xr += 1e-9
    xa = np.maximum(np.ceil(xl, out=xl), lo_u[ids][rloc]).astype(np.int64)
    xb = np.minimum(np.floor(xr, out=xr), hi_u[ids][rloc]).astype(np.int64)
    span = np.maximum(xb - xa + 1, 0)
    total = int(span.sum())
    if total == 0:
        return empty
    # samples of every row: x runs from xa over span samples; fx_i - off is the sample's place in the
    # list. `row` holds each sample's row (one repeat; gathers by it are cheaper than more repeats)
    off = np.cumsum(span) - span
    row = np.repeat(np.arange(span.size), span)
    fx_i = np.arange(total) + (xa - off)[row]
    fx = fx_i.astype(np.float64)
    bary = np.empty((3, total))
    for b, Ar, e in zip(bary[:2], rowA, rowE):
        np.multiply(Ar[row], fx, out=b)
        b += e[row]
    np.subtract(1.0, bary[0], out=bary[2])
    bary[2] -= bary[1]
    np.clip(bary, 0, 1, out=bary)
    pix = np.arange(total) + (ry_i * cols + xa - off)[row]
    return Fragments(pix, ids[rloc][row], bary, (rows, cols))


def resolve(pix: np.ndarray, depth: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest fragment per sample: (depth buffer (n,), inf where empty; index of the winning
    fragment per sample (n,), -1 where empty)."""
    zbuf = depth_buffer(pix, depth, n)
    win = np.flatnonzero(depth <= np.take(zbuf, pix))
    owner = np.full(n, -1, np.int64)
    owner[pix[win]] = win
    return zbuf, owner


def depth_buffer(pix: np.ndarray, depth: np.ndarray, n: int) -> np.ndarray:
    """Nearest depth per sample (n,), inf where empty."""
    zbuf = np.full(n, np.inf)
    np.minimum.at(zbuf, pix, depth)
    return zbuf
