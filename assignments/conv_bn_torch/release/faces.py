"""Cartoon faces, smiling or frowning, for the conv_bn assignment.

The images are drawn here rather than downloaded so the notebook runs offline, in a
fraction of a second, and every run (students', instructor's, grader's) sees the same
pixels. Two things are deliberately uneven, because the assignment is about evening them
out:

* every image has its own brightness, contrast and noise level, so raw pixel values of
  two images of the same class can be far apart;
* the whole data set has a warm colour cast: red is bright and widely spread, blue is
  dark and narrow, so the three input channels live on different scales.

Only NumPy is used, so the file can be copied next to a notebook and imported as is.
"""
from __future__ import annotations

import numpy as np

IMAGE_SIZE = 64
CLASS_NAMES = ("frowning", "smiling")

# Gain and offset of the data set's colour cast, per RGB channel. Chosen so the channel
# means and spreads differ by a factor of about two to three (see the module docstring).
_CAST_GAIN = np.array([0.8, 0.7, 0.4], dtype=np.float32)
_CAST_OFFSET = np.array([45.0, 10.0, 15.0], dtype=np.float32)


def _disc(dist: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Coverage of a disc, with a one-pixel soft rim so small features do not alias."""
    return np.clip(radius - dist + 0.5, 0.0, 1.0)


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Alpha-blend `colour` (N, 3) over `canvas` (N, H, W, 3) where `mask` (N, H, W) is set."""
    m = mask[..., None]
    return canvas * (1.0 - m) + colour[:, None, None, :] * m


def draw_faces(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one face per label (1 = smiling, 0 = frowning) as float32 RGB in [0, 255].

    All images are drawn at once on broadcast coordinate grids; a Python loop over images
    would make a few hundred faces take seconds instead of tens of milliseconds.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    size = IMAGE_SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy[None], xx[None]

    def per_image(low, high):
        return rng.uniform(low, high, size=(n, 1, 1)).astype(np.float32)

    # Geometry: the face moves and changes size a little, the features follow it.
    cx, cy = per_image(27, 37), per_image(27, 37)
    r = per_image(17, 24)

    # Background: a flat colour plus a gentle linear gradient in a random direction.
    background = rng.uniform(30, 220, size=(n, 3)).astype(np.float32)
    angle = per_image(0, 2 * np.pi)
    ramp = ((xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle)) / size
    canvas = background[:, None, None, :] + (per_image(0, 60) * ramp)[..., None]

    skin = np.array([225.0, 195.0, 160.0], dtype=np.float32) + rng.uniform(-35, 25, size=(n, 3))
    face = _disc(np.hypot(xx - cx, yy - cy), r)
    canvas = _paint(canvas, face, skin.astype(np.float32))

    ink = rng.uniform(10, 70, size=(n, 3)).astype(np.float32)
    eye_dx, eye_dy = r * per_image(0.30, 0.42), r * per_image(0.22, 0.34)
    eye_r = r * per_image(0.09, 0.14)
    eyes = np.maximum(_disc(np.hypot(xx - (cx - eye_dx), yy - (cy - eye_dy)), eye_r),
                      _disc(np.hypot(xx - (cx + eye_dx), yy - (cy - eye_dy)), eye_r))
    canvas = _paint(canvas, eyes, ink)

    # Mouth: a parabola across the lower face. Smiling puts its middle lower than its
    # corners (image rows grow downwards), frowning the other way round.
    half_width = r * per_image(0.40, 0.60)
    u = (xx - cx) / half_width
    bend = r * per_image(0.16, 0.30)
    sign = np.where(labels[:, None, None] == 1, 1.0, -1.0).astype(np.float32)
    mouth_y = cy + r * per_image(0.35, 0.48) + sign * bend * (0.5 - u ** 2)
    thickness = per_image(1.0, 2.0)
    mouth = np.clip(thickness - np.abs(yy - mouth_y) + 0.5, 0.0, 1.0)
    mouth *= np.clip((1.0 - np.abs(u)) * half_width + 0.5, 0.0, 1.0)
    canvas = _paint(canvas, mouth, ink)

    # Photometric variation: per-image contrast and brightness, then the colour cast
    # (shared by the data set, jittered per image), then sensor noise.
    contrast = np.exp(per_image(np.log(0.35), np.log(1.2)))[..., None]
    brightness = per_image(-40, 40)[..., None]
    canvas = (canvas - 128.0) * contrast + 128.0 + brightness
    gain = _CAST_GAIN * rng.uniform(0.85, 1.15, size=(n, 3)).astype(np.float32)
    canvas = canvas * gain[:, None, None, :] + _CAST_OFFSET
    noise_sd = per_image(2, 16)[..., None]
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * noise_sd
    return np.clip(canvas, 0.0, 255.0)


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Exactly balanced classes, so even a tiny split contains both.
    labels = rng.permutation(np.arange(n) % 2).astype(np.uint8)
    images = np.rint(draw_faces(labels, rng)).astype(np.uint8)
    return images, labels


def load_faces(n_train: int = 480, n_test: int = 120, seed: int = 0):
    """Return `(X_train, y_train, X_test, y_test)`.

    Images are uint8 arrays of shape (n, 64, 64, 3), RGB in [0, 255]; labels are uint8
    arrays of shape (n,), 1 for a smiling face and 0 for a frowning one.

    The train and test sets come from separate random streams derived from `seed`, so
    asking for more training images never changes the test images.
    """
    if n_train < 2 or n_test < 2:
        raise ValueError("need at least two images per split so both classes appear")
    train_rng = np.random.default_rng([seed, 0])
    test_rng = np.random.default_rng([seed, 1])
    X_train, y_train = _split(n_train, train_rng)
    X_test, y_test = _split(n_test, test_rng)
    return X_train, y_train, X_test, y_test
