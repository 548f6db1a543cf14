"""Vehicle classes: airplane, car, rocket, boat.

Convention: +y up, front (nose, bonnet, bow) along +z, width along x; a rocket stands
upright (nose along +y). Builders take a ``numpy.random.Generator`` and return parts.
"""
from __future__ import annotations

import numpy as np

from canocaps.data.procedural.mesh import Mesh, box, cone, cylinder, hexahedron, lathe, rotation_matrix, tube

__all__ = ["airplane", "car", "rocket", "boat"]

_Y_TO_Z = rotation_matrix("x", np.pi / 2)  # maps +y onto +z


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _wing(root_z: float, root_chord: float, span: float, tip_chord: float, sweep: float, dihedral: float,
          thick: float, y: float, side: int, x0: float = 0.0) -> Mesh:
    """A tapered, swept slab from the root (x = x0) out to ``side * span``; chord along z."""
    tip_x = x0 + side * span
    tip_y = y + span * np.tan(dihedral)
    tip_z = root_z - sweep
    c = []
    for t in (-thick / 2, thick / 2):
        c += [[x0, y + t, root_z - root_chord / 2], [tip_x, tip_y + 0.5 * t, tip_z - tip_chord / 2],
              [tip_x, tip_y + 0.5 * t, tip_z + tip_chord / 2], [x0, y + t, root_z + root_chord / 2]]
    return hexahedron(np.array(c))


def airplane(rng: np.random.Generator) -> list[Mesh]:
    """Fuselage along z (nose +z), swept wings, tailplane, fin(s), 0/2/4 engines."""
    L = _u(rng, 1.5, 3.5)
    R = _u(rng, 0.1, 0.3)
    zs = np.array([0.0, 0.04, 0.2, 0.75, 0.9, 1.0])
    rs = R * np.array([0.25, 0.8, 1.0, 1.0, _u(rng, 0.45, 0.7), _u(rng, 0.15, 0.4)])
    body = lathe(rs, zs * L, 16)  # built along +y (nose at y = 0), then turned
    parts = [body.transformed(R=rotation_matrix("x", -np.pi / 2), t=(0, 0, L / 2))]  # +y -> -z: nose at z = +L/2
    wing_z = _u(rng, 0.0, 0.2) * L
    span = _u(rng, 0.6, 2.0)
    chord = _u(rng, 0.25, 0.5) * L * 0.6
    wy = _u(rng, -0.7, 0.5) * R
    sweep = _u(rng, 0.0, 0.6) * span
    dih = np.deg2rad(_u(rng, -4, 8))
    thick = _u(rng, 0.02, 0.05)
    taper = _u(rng, 0.25, 0.7)
    for s in (-1, 1):
        parts.append(_wing(wing_z, chord, span, chord * taper, sweep, dih, thick, wy, s))
    tail_z = -0.42 * L
    tspan = _u(rng, 0.25, 0.45) * span
    t_high = rng.random() < 0.3
    fin_h = _u(rng, 0.3, 0.6)
    ty = fin_h if t_high else _u(rng, -0.2, 0.4) * R
    for s in (-1, 1):
        parts.append(_wing(tail_z, chord * 0.6, tspan, chord * 0.3, 0.4 * tspan, dih, thick * 0.8, ty, s))
    fin_c = chord * _u(rng, 0.5, 0.8)
    parts.append(hexahedron(np.array([
        [-0.015, 0.5 * R, tail_z - fin_c / 2], [0.015, 0.5 * R, tail_z - fin_c / 2],
        [0.015, 0.5 * R, tail_z + fin_c / 2], [-0.015, 0.5 * R, tail_z + fin_c / 2],
        [-0.01, fin_h, tail_z - fin_c * 0.8], [0.01, fin_h, tail_z - fin_c * 0.8],
        [0.01, fin_h, tail_z - fin_c * 0.3], [-0.01, fin_h, tail_z - fin_c * 0.3]])))
    n_eng = int(rng.choice([0, 2, 2, 4]))
    er = _u(rng, 0.05, 0.1)
    el = _u(rng, 0.25, 0.45)
    for k in range(n_eng):
        s = -1 if k % 2 == 0 else 1
        frac = 0.35 if n_eng == 2 else (0.3 if k < 2 else 0.62)
        x = s * frac * span
        z = wing_z - sweep * frac + 0.3 * chord
        y = wy + x * s * np.tan(dih) - er - thick
        parts.append(cylinder(er, -el / 2, el / 2, segments=12).transformed(R=_Y_TO_Z, t=(x, y, z)))
    return parts


def car(rng: np.random.Generator) -> list[Mesh]:
    """Body slab, a cabin (sedan/hatchback/van/pickup), four wheels, optional spoiler."""
    L, W = _u(rng, 3.4, 5.0), _u(rng, 1.55, 1.95)
    clear, bh = _u(rng, 0.15, 0.35), _u(rng, 0.45, 0.8)
    nose = _u(rng, 0.0, 0.2)
    y0, y1 = clear, clear + bh
    hl, hw = L / 2, W / 2
    parts = [hexahedron(np.array([
        [-hw, y0, -hl], [hw, y0, -hl], [hw, y0, hl], [-hw, y0, hl],
        [-hw, y1, -hl], [hw, y1, -hl], [hw, y1 - nose, hl], [-hw, y1 - nose, hl]]))]
    kind = rng.integers(4)
    ch = _u(rng, 0.4, 0.65) if kind != 2 else _u(rng, 0.8, 1.1)
    if kind == 0:  # sedan: cabin in the middle
        zb, zf = -0.3 * L, 0.15 * L
    elif kind == 1:  # hatchback: cabin to the back
        zb, zf = -0.48 * L, 0.15 * L
    elif kind == 2:  # van: long tall cabin
        zb, zf = -0.49 * L, 0.3 * L
    else:  # pickup: cabin up front, open bed behind
        zb, zf = -0.05 * L, 0.2 * L
    slope_f, slope_b = _u(rng, 0.1, 0.5) * ch, _u(rng, 0.0, 0.4) * ch
    cw = hw * _u(rng, 0.8, 0.95)
    parts.append(hexahedron(np.array([
        [-hw * 0.95, y1, zb], [hw * 0.95, y1, zb], [hw * 0.95, y1, zf], [-hw * 0.95, y1, zf],
        [-cw, y1 + ch, zb + slope_b], [cw, y1 + ch, zb + slope_b], [cw, y1 + ch, zf - slope_f], [-cw, y1 + ch, zf - slope_f]])))
    if kind == 3:  # bed walls
        for sx in (-1, 1):
            parts.append(box((sx * (hw - 0.04), y1 + 0.15, -0.27 * L), (0.08, 0.3, 0.44 * L)))
        parts.append(box((0, y1 + 0.15, -hl + 0.04), (W, 0.3, 0.08)))
    wr = _u(rng, 0.28, 0.4)
    ww = _u(rng, 0.18, 0.28)
    wb = _u(rng, 0.3, 0.36) * L
    for sx in (-1, 1):
        for sz in (-1, 1):
            wheel = cylinder(wr, -ww / 2, ww / 2, segments=16).transformed(R=rotation_matrix("z", np.pi / 2))
            parts.append(wheel.transformed(t=(sx * (hw - ww / 2 + 0.03), wr, sz * wb)))
    if kind in (0, 1) and rng.random() < 0.25:
        parts.append(box((0, y1 + 0.12, -hl + 0.1), (W * 0.9, 0.03, 0.2)))
    return parts


def rocket(rng: np.random.Generator) -> list[Mesh]:
    """Upright body of revolution with a nose cone, 3-4 fins, nozzle, 0/2/4 boosters."""
    H = _u(rng, 1.2, 4.0)
    R = _u(rng, 0.12, 0.45)
    nose = _u(rng, 0.12, 0.3) * H
    k = np.linspace(0, 1, 6)
    ogive = R * np.sqrt(np.clip(1 - k ** _u(rng, 1.0, 2.0), 0, 1))
    body_r = np.concatenate([[R * _u(rng, 0.85, 1.0), R], ogive[1:]])
    body_y = np.concatenate([[0.0, H - nose], H - nose + k[1:] * nose])
    parts = [lathe(body_r, body_y, 18)]
    parts.append(cone(R * 0.5, R * _u(rng, 0.6, 0.9), -_u(rng, 0.1, 0.3), 0.0, segments=14, cap_top=False))
    n_fins = int(rng.choice([3, 4]))
    fh, fw = _u(rng, 0.1, 0.4) * H, _u(rng, 0.4, 2.5) * R
    phase = _u(rng, 0, np.pi)
    for i in range(n_fins):
        a = phase + 2 * np.pi * i / n_fins
        fin = hexahedron(np.array([
            [R * 0.9, 0.0, -0.01], [R + fw, -0.05 * H, -0.01], [R + fw, -0.05 * H, 0.01], [R * 0.9, 0.0, 0.01],
            [R * 0.9, fh, -0.01], [R + fw, 0.3 * fh, -0.01], [R + fw, 0.3 * fh, 0.01], [R * 0.9, fh, 0.01]]))
        parts.append(fin.transformed(R=rotation_matrix("y", a)))
    n_boost = int(rng.choice([0, 0, 2, 4]))
    br, bh = R * _u(rng, 0.3, 0.5), H * _u(rng, 0.3, 0.55)
    for i in range(n_boost):
        a = phase + np.pi / n_fins + 2 * np.pi * i / n_boost
        b = lathe([br, br, br * 0.5, 0.0], [0, bh, bh * 1.1, bh * 1.2], 10)
        parts.append(b.transformed(t=((R + br) * np.cos(a), 0.02 * H, (R + br) * np.sin(a))))
    return parts


def boat(rng: np.random.Generator) -> list[Mesh]:
    """V-section hull with a pointed bow at +z, deck cabins or a mast and sail."""
    L, W = _u(rng, 2.5, 5.0), _u(rng, 0.7, 1.6)
    D = _u(rng, 0.3, 0.7)
    bow = _u(rng, 0.2, 0.4) * L
    keel = _u(rng, 0.2, 0.6)  # bottom width relative to deck
    hl, hw = L / 2, W / 2
    parts = [hexahedron(np.array([
        [-hw * keel, 0, -hl], [hw * keel, 0, -hl], [hw * keel, 0, hl - bow], [-hw * keel, 0, hl - bow],
        [-hw, D, -hl], [hw, D, -hl], [hw, D, hl - bow], [-hw, D, hl - bow]]))]
    tip_y = D * _u(rng, 0.9, 1.3)
    parts.append(hexahedron(np.array([
        [-hw * keel, 0, hl - bow], [hw * keel, 0, hl - bow], [0.005, D * 0.5, hl], [-0.005, D * 0.5, hl],
        [-hw, D, hl - bow], [hw, D, hl - bow], [0.005, tip_y, hl + 0.05 * L], [-0.005, tip_y, hl + 0.05 * L]])))
    if rng.random() < 0.6:  # motor boat / ship: 1-3 stacked cabins
        n = int(rng.integers(1, 4))
        cl, cw, y = _u(rng, 0.25, 0.5) * L, hw * _u(rng, 1.0, 1.6), D
        z = _u(rng, -0.25, 0.05) * L
        for _ in range(n):
            h = _u(rng, 0.2, 0.45)
            parts.append(box((0, y + h / 2, z), (cw, h, cl)))
            y += h
            cl *= _u(rng, 0.5, 0.8)
            cw *= _u(rng, 0.6, 0.9)
        if rng.random() < 0.5:
            parts.append(cylinder(_u(rng, 0.06, 0.15), y, y + _u(rng, 0.2, 0.5), segments=10).transformed(t=(0, 0, z - 0.1 * cl)))
    else:  # sailing boat: mast and a triangular sail
        mh = _u(rng, 1.2, 2.5) * D * 3
        mz = _u(rng, 0.0, 0.2) * L
        parts.append(tube((0, D, mz), (0, D + mh, mz), 0.03, 0.02, segments=6))
        sl = _u(rng, 0.3, 0.5) * L
        parts.append(hexahedron(np.array([
            [-0.01, D + 0.15, mz - 0.02], [0.01, D + 0.15, mz - 0.02], [0.01, D + 0.15, mz - sl], [-0.01, D + 0.15, mz - sl],
            [-0.01, D + mh * 0.95, mz - 0.02], [0.01, D + mh * 0.95, mz - 0.02], [0.01, D + mh * 0.95, mz - 0.04], [-0.01, D + mh * 0.95, mz - 0.04]])))
    return parts
