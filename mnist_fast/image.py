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

``load_digit`` reads a file's samples by their bit depth (white is the
largest value the depth holds; floats are 0 to 1) and refuses, from the
header, a picture larger than ``MAX_PIXELS``.
"""

import struct

import numpy as np

from .files import existing_file

SIZE = 28
BOX = 20
#: Where MNIST's digits have their centre of mass, on average (row, column).
CENTRE = 14.0
#: Ink fainter than this (after scaling to [0, 1]) counts as background.
INK_THRESHOLD = 0.2
#: The largest picture ``load_digit`` reads, 8192 x 8192 (64 megapixels):
#: above a camera's ordinary photo (a 48-megapixel phone photo is 8000 x
#: 6000), below Pillow's decompression-bomb warning.  Checked from the
#: file's header, before its pixels are decoded.
MAX_SIDE = 8192
MAX_PIXELS = MAX_SIDE * MAX_SIDE


def _border(a):
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def to_mnist(pixels):
    """Make a greyscale picture of one digit into an MNIST input row.

    Parameters
    ----------
    pixels : array_like of shape (height, width)
        Grey levels 0 (black) to 255 (white), of any integer or float
        dtype, or a bool mask (True is white, as Pillow's mode ``"1"``): a
        dark digit on a light background or a light digit on a dark one.

    Returns
    -------
    numpy.ndarray of shape (1, 784), float32 in [0, 1]
        White digit on black, as the rows of ``load_mnist()``.

    Raises
    ------
    TypeError
        ``pixels`` is not of numbers (complex, strings, objects ...).
    ValueError
        ``pixels`` is not 2-D, holds NaN, infinity or values outside
        0-255, or holds no digit (a blank picture).
    """
    from PIL import Image

    a = np.asarray(pixels)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(
            f"pixels must be a 2-D greyscale picture, got shape {a.shape}"
        )
    if a.dtype == np.bool_:
        a = a * np.uint8(255)
    elif a.dtype.kind not in "iuf":
        raise TypeError(
            f"pixels must be grey levels 0-255 (integers or floats), got "
            f"dtype {a.dtype}"
        )
    bad = a.size - np.count_nonzero(np.isfinite(a))
    if bad:
        raise ValueError(
            f"pixels must be finite grey levels 0-255, got {bad} NaN or "
            "infinite values"
        )
    if a.min() < 0 or a.max() > 255:
        raise ValueError(
            f"pixels must be grey levels from 0 to 255, got values from "
            f"{a.min():g} to {a.max():g}"
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


def _white_level(img):
    """The sample value of white in ``img``: the largest its bit depth holds.

    Floats are 0 (black) to 1 (white).  Integer samples are as deep as the
    mode's type (``I;16``: 16 bits), except mode ``I`` (32-bit integers),
    which Pillow also fills with shallower samples: as deep as a TIFF file
    declares them (BitsPerSample, SampleFormat), else 16 bits, the depth
    Pillow gives PGM/PPM files of more than 8 bits.
    """
    from PIL import ImageMode

    dtype = np.dtype(ImageMode.getmode(img.mode).typestr)
    if dtype.kind == "f":
        return 1.0
    bits, signed = 8 * dtype.itemsize, dtype.kind == "i"
    if img.mode == "I":
        from PIL.TiffImagePlugin import BITSPERSAMPLE, SAMPLEFORMAT

        tags = getattr(img, "tag_v2", {})
        bits = np.ravel(tags.get(BITSPERSAMPLE, 16))[0]
        signed = np.ravel(tags.get(SAMPLEFORMAT, 1))[0] == 2
    return float(2 ** (int(bits) - signed) - 1)


def _grey_and_alpha(img, white):
    """``img``'s grey levels on the 0-255 scale and its opacity (0-1, or None).

    Images of 8-bit bands (``1``, ``L``, ``P``, RGB, CMYK, with or without
    alpha ...) are converted by Pillow.  Deeper single-band ones (``I;16``,
    ``I``, ``F``, whose sample of white is ``white``) are read as 16-bit
    levels (deeper samples rounded to them: 8-bit levels stored deeper come
    back exactly), then put on the 0-255 scale.
    """
    transparency = img.info.get("transparency")
    if white == 255:  # uint8 or bool bands: Pillow's conversions
        if "A" not in img.getbands() and transparency is None:
            return np.asarray(img.convert("L")), None
        rgba = img.convert("RGBA")
        return (np.asarray(rgba.convert("L")),
                np.asarray(rgba.getchannel("A")) / 255.0)
    samples = np.asarray(img, dtype=np.float64)
    lo, hi = samples.min(), samples.max()
    if lo < 0 or hi > white:  # NaN passes, for to_mnist to report
        raise ValueError(
            f"a mode {img.mode} image must hold values from 0 (black) to "
            f"{white:g} (white), got {lo:g} to {hi:g}"
        )
    alpha = None
    if isinstance(transparency, (int, float)):  # one sample value is transparent
        alpha = (np.asarray(img) != transparency).astype(np.float64)
    return np.rint(samples * (65535 / white)) / 257.0, alpha


def _greyscale(img):
    """``img`` as grey levels 0-255 (uint8 for 8-bit images, else float64);
    transparent parts become the background."""
    from PIL import ImageOps

    white = _white_level(img)  # from the file's header, before any copy
    grey, alpha = _grey_and_alpha(ImageOps.exif_transpose(img), white)
    if alpha is None:
        return grey
    opaque = alpha > 0.5
    # light ink goes on black, dark ink on white
    ink_is_light = opaque.any() and grey[opaque].mean() >= 128
    background = 0.0 if ink_is_light else 255.0
    return grey * alpha + background * (1.0 - alpha)


def _decoded(path):
    """The image in ``path``, decoded; ``ValueError`` if Pillow cannot read
    it or it has more than ``MAX_PIXELS`` pixels (known from its header:
    then nothing is decoded)."""
    import warnings

    from PIL import Image

    img = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        width, height = img.size
        if width * height <= MAX_PIXELS:
            img.load()
            return img
    # what Pillow raises for a file it cannot decode: not an image
    # (UnidentifiedImageError, an OSError), truncated or damaged data
    # (OSError, SyntaxError, EOFError, ValueError, struct.error ...), a
    # header beyond its decompression-bomb limits
    except (OSError, SyntaxError, EOFError, ValueError, struct.error,
            IndexError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        if img is not None:
            img.close()
        raise ValueError(f"not an image that can be read ({exc})") from None
    img.close()
    raise ValueError(
        f"{width} x {height} pixels, more than the {MAX_PIXELS} "
        f"({MAX_SIDE} x {MAX_SIDE}) a picture of a digit may have"
    )


def load_digit(path):
    """Read a picture of one handwritten digit as an MNIST input row.

    Parameters
    ----------
    path : str or path
        An image file Pillow reads (PNG, JPEG, GIF, BMP, TIFF, ...): one
        digit, dark on light or light on dark; colour and transparency
        are allowed.  Samples are read by their bit depth: 8-bit and
        16-bit images of one drawing give the same row, and float images
        (mode ``F``) are 0 (black) to 1 (white).  At most ``MAX_PIXELS``.
        See :func:`to_mnist` for what is done to it.

    Returns
    -------
    numpy.ndarray of shape (1, 784), float32 in [0, 1]
        Ready for ``TwoLayerNet.predict``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not an image Pillow can read (damaged, truncated,
        another kind of file), has more than ``MAX_PIXELS`` pixels, has
        samples outside its bit depth's range (a float image beyond
        [0, 1]) or holds no digit; the message names the file.
    """
    path = existing_file(path, "image")
    try:
        with _decoded(path) as img:
            pixels = _greyscale(img)
        return to_mnist(pixels)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
