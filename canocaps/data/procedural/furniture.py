"""Furniture classes: chair, table, bench, sofa, lamp.

Convention for every class: +y up, the object stands on y = 0 (before normalisation),
its front (where a person sits / what faces the viewer) looks along +z, width along x.
Every builder takes a ``numpy.random.Generator`` and returns a :class:`Mesh`; all
randomness goes through it, so a seed fixes the shape.
"""
from __future__ import annotations

import numpy as np

from canocaps.data.procedural.mesh import Mesh, box, cone, cylinder, ellipsoid, hexahedron, lathe, rotation_matrix, tube

__all__ = ["chair", "table", "bench", "sofa", "lamp"]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _legs(rng, xs, zs, top: float, thick: float, round_legs: bool, splay: float = 0.0) -> list[Mesh]:
    """Legs from the floor (y=0) to ``top`` at the corners (±xs, ±zs), optionally splayed outwards."""
    parts = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            top_p = np.array([sx * xs, top, sz * zs])
            foot = np.array([sx * (xs + splay), 0.0, sz * (zs + splay)])
            if round_legs:
                parts.append(tube(foot, top_p, thick * 0.5, thick * 0.6, segments=8))
            else:
                c = 0.5 * thick
                parts.append(hexahedron(np.array([
                    foot + [-c, 0, -c], foot + [c, 0, -c], foot + [c, 0, c], foot + [-c, 0, c],
                    top_p + [-c, 0, -c], top_p + [c, 0, -c], top_p + [c, 0, c], top_p + [-c, 0, c]])))
    return parts


def chair(rng: np.random.Generator) -> list[Mesh]:
    """Seat, back (panel or slats, tilted), 4 legs or a swivel base, optional arms."""
    w, d = _u(rng, 0.4, 0.62), _u(rng, 0.38, 0.6)
    h, t = _u(rng, 0.38, 0.52), _u(rng, 0.03, 0.09)
    parts = [box((0, h + t / 2, 0), (w, t, d))]
    back_h = _u(rng, 0.3, 0.7)
    tilt = np.deg2rad(_u(rng, 0, 18))
    bt = _u(rng, 0.025, 0.07)
    R = rotation_matrix("x", -tilt)
    base = np.array([0.0, h + t, -d / 2 + bt / 2])
    style = rng.integers(3)
    if style == 0:  # solid panel
        parts.append(box((0, back_h / 2, 0), (w, back_h, bt)).transformed(R=R, t=base))
    else:  # vertical slats or horizontal rails between two posts
        post = _u(rng, 0.03, 0.05)
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - post / 2), back_h / 2, 0), (post, back_h, bt)).transformed(R=R, t=base))
        n = int(rng.integers(2, 6))
        if style == 1:
            for k in range(n):
                x = -w / 2 + post + (k + 0.5) * (w - 2 * post) / n
                parts.append(box((x, back_h / 2, 0), (0.6 * post, back_h * 0.85, bt * 0.7)).transformed(R=R, t=base))
        top_h = _u(rng, 0.05, 0.15) if style == 1 else back_h / (2 * n)
        ys = [back_h - top_h / 2] if style == 1 else [back_h * (k + 0.5) / n for k in range(n)]
        for y in ys:
            parts.append(box((0, y, 0), (w, top_h, bt)).transformed(R=R, t=base))
    leg = _u(rng, 0.025, 0.06)
    if rng.random() < 0.75:
        parts += _legs(rng, w / 2 - leg / 2, d / 2 - leg / 2, h, leg, rng.random() < 0.5, _u(rng, 0, 0.05))
    else:  # swivel chair: column and a star of feet
        parts.append(cylinder(_u(rng, 0.025, 0.05), 0.06, h, segments=12))
        n_feet = int(rng.integers(4, 6))
        reach = _u(rng, 0.22, 0.32)
        phase = _u(rng, 0, 2 * np.pi)
        for k in range(n_feet):
            a = phase + 2 * np.pi * k / n_feet
            parts.append(tube((0, 0.07, 0), (reach * np.cos(a), 0.03, reach * np.sin(a)), 0.02, 0.015, segments=6))
    if rng.random() < 0.4:  # arms
        ah = _u(rng, 0.18, 0.3)
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.02)
            parts.append(box((x, h + t + ah, -0.05 * d), (0.05, 0.04, d * 0.85)))
            parts.append(box((x, h + t + ah / 2, d * 0.3), (0.035, ah, 0.035)))
    return parts


def table(rng: np.random.Generator) -> list[Mesh]:
    """Rectangular or round top on 4 legs, a pedestal or two trestle panels; optional shelf."""
    h = _u(rng, 0.45, 0.8)
    t = _u(rng, 0.03, 0.08)
    round_top = rng.random() < 0.35
    if round_top:
        r = _u(rng, 0.35, 0.65)
        w = d = 2 * r
        parts = [cylinder(r, h - t, h, segments=28)]
    else:
        w, d = _u(rng, 0.8, 1.8), _u(rng, 0.5, 1.0)
        parts = [box((0, h - t / 2, 0), (w, t, d))]
    style = rng.integers(3) if not round_top else rng.integers(2)
    leg = _u(rng, 0.04, 0.09)
    if style == 0:
        inset = 0.35 if round_top else _u(rng, 0.02, 0.12)
        xs = w / 2 * (1 - inset) if round_top else w / 2 - leg / 2 - inset
        zs = d / 2 * (1 - inset) if round_top else d / 2 - leg / 2 - inset
        parts += _legs(rng, xs, zs, h - t, leg, rng.random() < 0.5, _u(rng, 0, 0.04))
        if rng.random() < 0.35:  # lower shelf
            parts.append(box((0, _u(rng, 0.1, 0.25), 0), (2 * xs, 0.02, 2 * zs)))
    elif style == 1:  # pedestal
        parts.append(cylinder(_u(rng, 0.04, 0.1), 0.03, h - t, segments=14))
        parts.append(cone(_u(rng, 0.2, 0.4) * max(1.0, w / 1.2), _u(rng, 0.05, 0.1), 0.0, 0.05, segments=20))
    else:  # trestle: two panels and a stretcher
        for sx in (-1, 1):
            x = sx * (w / 2 - _u(rng, 0.1, 0.2))
            parts.append(box((x, (h - t) / 2, 0), (0.05, h - t, d * _u(rng, 0.6, 0.9))))
        parts.append(box((0, _u(rng, 0.15, 0.4), 0), (w * 0.7, 0.05, 0.05)))
    return parts


def bench(rng: np.random.Generator) -> list[Mesh]:
    """A long low seat (planks or slab) on legs or end panels; optional slatted back."""
    w, d, h = _u(rng, 1.1, 2.2), _u(rng, 0.28, 0.48), _u(rng, 0.35, 0.5)
    t = _u(rng, 0.03, 0.08)
    parts = []
    if rng.random() < 0.5:
        parts.append(box((0, h - t / 2, 0), (w, t, d)))
    else:
        n = int(rng.integers(2, 6))
        gap = 0.15 * d / n
        pw = (d - gap * (n - 1)) / n
        for k in range(n):
            z = -d / 2 + pw / 2 + k * (pw + gap)
            parts.append(box((0, h - t / 2, z), (w, t, pw)))
    if rng.random() < 0.5:
        n_pairs = 2 if w < 1.6 else int(rng.integers(2, 4))
        leg = _u(rng, 0.04, 0.08)
        for k in range(n_pairs):
            x = -w / 2 + 0.08 + k * (w - 0.16) / (n_pairs - 1)
            for sz in (-1, 1):
                parts.append(box((x, (h - t) / 2, sz * (d / 2 - leg)), (leg, h - t, leg)))
    else:
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - 0.1), (h - t) / 2, 0), (_u(rng, 0.04, 0.1), h - t, d * _u(rng, 0.8, 1.0))))
    if rng.random() < 0.45:  # backrest
        bh = _u(rng, 0.25, 0.45)
        n = int(rng.integers(1, 4))
        for k in range(n):
            y = h + 0.08 + (k + 0.5) * bh / n
            parts.append(box((0, y, -d / 2 + 0.02), (w, 0.6 * bh / n, 0.03)))
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - 0.1), h + bh / 2 + 0.04, -d / 2 + 0.02), (0.05, bh + 0.08, 0.04)))
    return parts


def sofa(rng: np.random.Generator) -> list[Mesh]:
    """Bulky base, seat cushions, a back block (straight or reclined), 0-2 arms, short feet."""
    w, d = _u(rng, 1.3, 2.6), _u(rng, 0.75, 1.0)
    base_h = _u(rng, 0.18, 0.35)
    foot = _u(rng, 0.0, 0.12)
    parts = [box((0, foot + base_h / 2, 0), (w, base_h, d))]
    n = int(rng.integers(1, 4))
    ch = _u(rng, 0.08, 0.18)
    arm_w = _u(rng, 0.1, 0.25)
    arms = int(rng.choice([0, 2, 2, 2, 1]))
    seat_w = w - arms * arm_w
    x0 = -w / 2 + (arm_w if arms == 2 else 0.0)
    for k in range(n):
        cw = seat_w / n
        parts.append(box((x0 + (k + 0.5) * cw, foot + base_h + ch / 2, 0.05 * d), (cw * 0.97, ch, d * 0.85)))
    bh = _u(rng, 0.3, 0.6)
    bd = _u(rng, 0.15, 0.3)
    lean = _u(rng, 0.0, 0.12)
    y0, y1 = foot + base_h, foot + base_h + bh
    z0 = -d / 2
    parts.append(hexahedron(np.array([
        [-w / 2, y0, z0], [w / 2, y0, z0], [w / 2, y0, z0 + bd], [-w / 2, y0, z0 + bd],
        [-w / 2, y1, z0 - lean], [w / 2, y1, z0 - lean], [w / 2, y1, z0 + bd - lean], [-w / 2, y1, z0 + bd - lean]])))
    ah = _u(rng, 0.12, 0.35)
    sides = {0: [], 1: [1], 2: [-1, 1]}[arms]
    for sx in sides:
        x = sx * (w / 2 - arm_w / 2)
        parts.append(box((x, foot + base_h + ah / 2, 0), (arm_w, ah, d)))
        if rng.random() < 0.5:  # rolled arm: a bolster along the arm's top
            y = foot + base_h + ah
            parts.append(tube((x, y, -d / 2), (x, y, d / 2), 0.55 * arm_w, segments=12))
    if foot > 0.03:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(cone(0.03, 0.04, 0.0, foot, segments=8).transformed(t=(sx * (w / 2 - 0.08), 0, sz * (d / 2 - 0.08))))
    return parts


def lamp(rng: np.random.Generator) -> list[Mesh]:
    """Floor lamp (tall pole), desk lamp (jointed arm, tilted shade) or table lamp (bulbous body)."""
    kind = rng.integers(3)
    parts = []
    base_r = _u(rng, 0.1, 0.2)
    base_h = _u(rng, 0.02, 0.06)
    if rng.random() < 0.7:
        parts.append(cylinder(base_r, 0.0, base_h, segments=20))
    else:
        parts.append(box((0, base_h / 2, 0), (2 * base_r, base_h, 1.6 * base_r)))
    shade_h = _u(rng, 0.15, 0.35)
    r_top, r_bot = _u(rng, 0.05, 0.15), _u(rng, 0.12, 0.3)
    shade = lathe([r_bot, r_top], [0.0, shade_h], 20, cap_bottom=False, cap_top=rng.random() < 0.5)
    if kind == 0:  # floor lamp
        H = _u(rng, 1.2, 1.8)
        parts.append(cylinder(_u(rng, 0.012, 0.03), base_h, H, segments=8))
        parts.append(shade.transformed(t=(0, H - 0.5 * shade_h, 0)))
    elif kind == 1:  # desk lamp: two arm segments, shade hanging forward
        a1, a2 = np.deg2rad(_u(rng, -25, 25)), np.deg2rad(_u(rng, 30, 110))
        l1, l2 = _u(rng, 0.3, 0.5), _u(rng, 0.25, 0.45)
        p0 = np.array([0.0, base_h, -0.5 * base_r])
        p1 = p0 + l1 * np.array([0.0, np.cos(a1), np.sin(a1)])
        p2 = p1 + l2 * np.array([0.0, np.cos(a2), np.sin(a2)])
        r = _u(rng, 0.01, 0.02)
        parts += [tube(p0, p1, r, segments=8), tube(p1, p2, r, segments=8), ellipsoid(p1, (0.03, 0.03, 0.03), 5, 8)]
        tilt = np.deg2rad(_u(rng, 120, 180))
        parts.append(lathe([0.6 * r_bot, 0.25 * r_bot], [0.0, 0.7 * shade_h], 16, cap_bottom=False)
                     .transformed(R=rotation_matrix("x", tilt), t=p2))
    else:  # table lamp: bulbous body and a wide shade
        bh = _u(rng, 0.2, 0.45)
        br = _u(rng, 0.06, 0.15)
        ys = np.linspace(0, 1, 7)
        prof = br * (0.4 + 0.6 * np.sin(np.pi * ys) ** _u(rng, 0.5, 2.0))
        parts.append(lathe(prof, base_h + bh * ys, 16))
        parts.append(cylinder(0.012, base_h + bh, base_h + bh + 0.1, segments=6))
        parts.append(shade.transformed(t=(0, base_h + bh + 0.05, 0)))
    return parts
