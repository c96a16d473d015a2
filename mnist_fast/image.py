"""A handwritten digit from an image file, made into an MNIST row.

MNIST's digits were made from scanned handwriting this way: each digit was
fitted into a 20x20 box keeping its aspect ratio (anti-aliased, hence grey
levels), then placed in a 28x28 field so that its centre of mass is at the
centre.  ``to_mnist`` does the same to any greyscale picture of a digit:

1. dark ink on a light background is inverted (MNIST is white on black);
2. the background level (the median of the border pixels) is subtracted,
   the ink scaled to [0, 1] and faint specks below ``INK_THRESHOLD``
   cleared;
3. the picture is cropped to the ink and resized to fit 20x20;
4. it is placed in 28x28 with its centre of mass at pixel (14, 14), where
   MNIST's digits have theirs on average.

A picture that already is in MNIST form (28x28, white digit on a black
border) is used as it is, pixel for pixel (``value / 255`` in float32, as
``load_mnist`` does), so it gets exactly the prediction of the MNIST row.
"""

import numpy as np

from .files import existing_file

SIZE = 28
BOX = 20
#: Where MNIST's digits have their centre of mass, on average (row, column).
CENTRE = 14.0
#: Ink fainter than this (after scaling to [0, 1]) counts as background.
INK_THRESHOLD = 0.2


def _border(a):
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def to_mnist(pixels):
    """Make a greyscale picture of one digit into an MNIST input row.

    Parameters
    ----------
    pixels : array_like of shape (height, width)
        Grey levels 0 (black) to 255 (white): a dark digit on a light
        background or a light digit on a dark one.

    Returns
    -------
    numpy.ndarray of shape (1, 784), float32 in [0, 1]
        White digit on black, as the rows of ``load_mnist()``.

    Raises
    ------
    ValueError
        ``pixels`` is not 2-D, or holds no digit (a blank picture).
    """
    from PIL import Image

    a = np.asarray(pixels)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(
            f"pixels must be a 2-D greyscale picture, got shape {a.shape}"
        )
    light_background = np.median(_border(a)) >= 128
    if a.shape == (SIZE, SIZE) and not light_background:
        return (a.astype(np.float32) / 255.0).reshape(1, SIZE * SIZE)

    a = a.astype(np.float64)
    if light_background:
        a = 255.0 - a
    ink = a - np.median(_border(a))
    peak = ink.max()
    if peak < 0.1 * 255:
        raise ValueError(
            "no digit found: the picture is blank (its darkest and lightest "
            f"parts differ by {peak:.0f} grey levels of 255)"
        )
    ink /= peak
    ink[ink < INK_THRESHOLD] = 0.0

    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    box = Image.fromarray(ink.astype(np.float32)).resize(  # mode "F"
        (new_w, new_h), Image.Resampling.LANCZOS)
    box = np.clip(np.asarray(box, dtype=np.float64), 0.0, None)
    box /= box.max()

    mass = box.sum()
    cy = (box.sum(axis=1) @ np.arange(new_h)) / mass
    cx = (box.sum(axis=0) @ np.arange(new_w)) / mass
    top = min(max(round(CENTRE - cy), 0), SIZE - new_h)
    left = min(max(round(CENTRE - cx), 0), SIZE - new_w)
    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    field[top:top + new_h, left:left + new_w] = box
    return field.reshape(1, SIZE * SIZE)


def _greyscale(img):
    """``img`` as 8-bit grey; transparent parts become the background."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        grey = np.asarray(rgba.convert("L"), dtype=np.float64)
        opaque = np.asarray(rgba.getchannel("A")) > 127
        # light ink goes on black, dark ink on white
        ink_is_light = opaque.any() and grey[opaque].mean() >= 128
        background = Image.new("RGBA", img.size,
                               (0, 0, 0, 255) if ink_is_light else (255,) * 4)
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("L"))


def load_digit(path):
    """Read a picture of one handwritten digit as an MNIST input row.

    Parameters
    ----------
    path : str or path
        An image file Pillow reads (PNG, JPEG, GIF, BMP, ...): one digit,
        dark on light or light on dark; colour and transparency are
        allowed.  See :func:`to_mnist` for what is done to it.

    Returns
    -------
    numpy.ndarray of shape (1, 784), float32 in [0, 1]
        Ready for ``TwoLayerNet.predict``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not an image Pillow can read, or holds no digit; the
        message names the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = existing_file(path, "image")
    try:
        with Image.open(path) as img:
            pixels = _greyscale(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not an image that can be read ({exc})") from None
    try:
        return to_mnist(pixels)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
