"""Household objects and plants: mug, bottle, guitar, monitor, tree.

Convention: +y up, front (the face of a guitar or screen) along +z, a mug's handle
on +x. Builders take a ``numpy.random.Generator`` and return parts.
"""
from __future__ import annotations

import numpy as np

from canocaps.data.procedural.mesh import Mesh, box, cone, cylinder, ellipsoid, hexahedron, lathe, rotation_matrix, sweep, torus, tube

__all__ = ["mug", "bottle", "guitar", "monitor", "tree"]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def mug(rng: np.random.Generator) -> list[Mesh]:
    """Open cup (outer wall, inner wall, rim, bottom) with a handle on +x (ring or squared)."""
    H, R = _u(rng, 0.7, 1.4), _u(rng, 0.35, 0.6)
    taper = _u(rng, 0.75, 1.15)
    wall = _u(rng, 0.03, 0.07)
    r_bot = R * taper
    parts = [
        lathe([r_bot, R], [0.0, H], 24, cap_bottom=True, cap_top=False),
        lathe([r_bot - wall, R - wall], [wall, H], 24, cap_bottom=True, cap_top=False),
        lathe([R - wall, R], [H, H], 24, cap_bottom=False, cap_top=False),
    ]
    hr = _u(rng, 0.25, 0.45) * H
    hy = _u(rng, 0.4, 0.6) * H
    thick = _u(rng, 0.04, 0.09)
    x_attach = 0.5 * (R + r_bot) - 0.02
    if rng.random() < 0.6:
        handle = torus(hr, thick, arc=np.pi, segments=14, tube_segments=8, start=-np.pi / 2)
        parts.append(handle.transformed(scale=(_u(rng, 0.6, 1.1), 1.0, 1.0), t=(x_attach, hy, 0)))
    else:
        out = _u(rng, 0.15, 0.35)
        path = np.array([[x_attach, hy + hr, 0], [x_attach + out, hy + hr, 0], [x_attach + out, hy - hr, 0], [x_attach, hy - hr, 0]])
        parts.append(sweep(path, thick, segments=8))
    return parts


def bottle(rng: np.random.Generator) -> list[Mesh]:
    """Body, shoulder, neck and cap as one profile of revolution (wine, water, jug, flask)."""
    H = _u(rng, 1.0, 3.0)
    R = _u(rng, 0.25, 0.7)
    neck_r = R * _u(rng, 0.2, 0.45)
    body = _u(rng, 0.4, 0.7)
    shoulder = _u(rng, 0.05, 0.25)
    ys = np.array([0.0, 0.02, body, body + shoulder * 0.5, body + shoulder, 0.93, 0.93, 1.0]) * H
    bulge = _u(rng, 0.9, 1.15)
    rs = np.array([R * 0.9, R, R * bulge, 0.5 * (R + neck_r), neck_r, neck_r, neck_r * 1.25, neck_r * 1.2])
    parts = [lathe(rs, np.maximum.accumulate(ys), 20, scale_xz=(1.0, _u(rng, 0.6, 1.0)))]
    if rng.random() < 0.25:  # side handle (jug)
        parts.append(torus(0.25 * H * body, 0.04, arc=np.pi, segments=10, tube_segments=6, start=-np.pi / 2)
                     .transformed(t=(R * 0.9, 0.5 * H * body + 0.1 * H, 0)))
    return parts


def guitar(rng: np.random.Generator) -> list[Mesh]:
    """Upright guitar facing +z: two-bout (acoustic) or single slab (electric) body, neck, head."""
    acoustic = rng.random() < 0.6
    depth = _u(rng, 0.1, 0.16) if acoustic else _u(rng, 0.04, 0.07)
    lower = _u(rng, 0.38, 0.5) if acoustic else _u(rng, 0.3, 0.4)
    upper = lower * _u(rng, 0.65, 0.85)
    ly = lower
    uy = 2 * lower + upper * _u(rng, 0.4, 0.8)
    parts = [cylinder(lower, -depth / 2, depth / 2, segments=24).transformed(R=rotation_matrix("x", np.pi / 2), t=(0, ly, 0)),
             cylinder(upper, -depth / 2, depth / 2, segments=22).transformed(R=rotation_matrix("x", np.pi / 2), t=(0, uy, 0))]
    if not acoustic and rng.random() < 0.6:  # horns
        parts.append(ellipsoid((-0.6 * upper, uy + 0.6 * upper, 0), (0.12, 0.25, depth / 2), 6, 10))
    if acoustic:  # sound hole ring
        parts.append(torus(0.3 * upper, 0.01, segments=16, tube_segments=4).transformed(t=(0, uy - 0.3 * upper, depth / 2)))
    neck_len = _u(rng, 0.6, 1.8)
    nw = _u(rng, 0.07, 0.11)
    y_top = uy + upper * 0.7
    parts.append(box((0, y_top + neck_len / 2, 0.01), (nw, neck_len, 0.05)))
    hl = _u(rng, 0.25, 0.4)
    tilt = np.deg2rad(_u(rng, 0, 15))
    head = box((0, hl / 2, 0), (nw * _u(rng, 1.2, 2.0), hl, 0.04))
    parts.append(head.transformed(R=rotation_matrix("x", -tilt), t=(0, y_top + neck_len, 0.01)))
    return parts


def monitor(rng: np.random.Generator) -> list[Mesh]:
    """Screen slab facing +z on a neck and foot (flat panel) or a deep back (CRT); wall-mount without a stand."""
    sw = _u(rng, 0.5, 0.9)
    sh = sw * _u(rng, 0.5, 0.8)
    st = _u(rng, 0.02, 0.06)
    stand = _u(rng, 0.1, 0.3)
    parts = [box((0, stand + sh / 2, 0), (sw, sh, st))]
    if rng.random() < 0.3:  # CRT-like tapered back
        back = _u(rng, 0.2, 0.45)
        y0, y1 = stand, stand + sh
        parts.append(hexahedron(np.array([
            [-sw / 2, y0, -st / 2], [sw / 2, y0, -st / 2], [sw * 0.3, y0 + 0.2 * sh, -st / 2 - back], [-sw * 0.3, y0 + 0.2 * sh, -st / 2 - back],
            [-sw / 2, y1, -st / 2], [sw / 2, y1, -st / 2], [sw * 0.3, y1 - 0.2 * sh, -st / 2 - back], [-sw * 0.3, y1 - 0.2 * sh, -st / 2 - back]])))
    nz = -st / 2 - 0.03
    neck = _u(rng, 0.04, 0.12)
    parts.append(box((0, stand / 2 + sh * 0.2, nz), (neck, stand + sh * 0.4, 0.03)))
    if rng.random() < 0.5:
        parts.append(box((0, 0.01, nz + 0.02), (_u(rng, 0.25, 0.6) * sw, 0.02, _u(rng, 0.15, 0.3))))
    else:
        parts.append(cylinder(_u(rng, 0.1, 0.2), 0.0, 0.02, segments=20).transformed(t=(0, 0, nz + 0.02)))
    return parts


def tree(rng: np.random.Generator) -> list[Mesh]:
    """Trunk (slightly bent) with a conifer (stacked cones), a blob crown, or a branching crown."""
    H = _u(rng, 1.0, 1.8)
    tr = _u(rng, 0.04, 0.1)
    bend = rng.normal(0, 0.05, size=2)
    kind = rng.integers(3)
    trunk_h = H * (_u(rng, 0.2, 0.4) if kind == 0 else _u(rng, 0.35, 0.6))
    k = np.linspace(0, 1, 5)
    path = np.stack([bend[0] * k ** 2, trunk_h * k, bend[1] * k ** 2], -1)
    parts = [sweep(path, tr * (1 - 0.4 * k), segments=8)]
    top = path[-1]
    if kind == 0:  # conifer
        n = int(rng.integers(2, 5))
        crown = H - trunk_h
        R = _u(rng, 0.25, 0.5)
        for i in range(n):
            y0 = top[1] - 0.1 * crown + i * crown / (n + 0.5)
            r = R * (1 - i / (n + 1))
            parts.append(cone(r, 0.0, y0, y0 + crown * 1.6 / n, segments=16).transformed(t=(top[0], 0, top[2])))
    elif kind == 1:  # blob crown
        n = int(rng.integers(3, 8))
        cr = _u(rng, 0.3, 0.6)
        for _ in range(n):
            off = rng.normal(0, 1, 3) * np.array([0.6, 0.4, 0.6]) * cr
            r = cr * _u(rng, 0.45, 0.8)
            parts.append(ellipsoid(top + off + np.array([0, 0.6 * cr, 0]), (r, r * _u(rng, 0.7, 1.1), r), 7, 10))
    else:  # branching
        n = int(rng.integers(3, 7))
        for i in range(n):
            a = _u(rng, 0, 2 * np.pi)
            up = _u(rng, 0.3, 1.0)
            ln = _u(rng, 0.3, 0.7) * H
            start = path[int(rng.integers(2, 5))]
            end = start + ln * np.array([np.cos(a) * (1 - up * 0.5), up, np.sin(a) * (1 - up * 0.5)])
            parts.append(tube(start, end, tr * 0.5, tr * 0.25, segments=6))
            r = _u(rng, 0.1, 0.25)
            parts.append(ellipsoid(end, (r, r * 0.8, r), 5, 8))
    return parts
