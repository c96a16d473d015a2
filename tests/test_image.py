"""mnist_fast.image: a picture of a digit made into an MNIST row, as MNIST was made."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from mnist_fast.image import MAX_SIDE, load_digit, to_mnist


@pytest.fixture(scope="module")
def digits():
    """Raw MNIST test digits (uint8, 28x28) and their labels."""
    import mnist_fast

    _, (x, t) = mnist_fast.load_mnist(normalize=False, flatten=False)
    return x[:, 0], t


def drawing(digit, size=140, shape=(300, 260), at=(30, 90)):
    """A digit as a person draws it: big, dark on white paper, off centre."""
    big = np.asarray(Image.fromarray(digit).resize((size, size),
                                                   Image.Resampling.BICUBIC))
    page = np.full(shape, 255, np.uint8)
    page[at[0]:at[0] + size, at[1]:at[1] + size] = 255 - big
    return page


def centre_of_mass(row):
    img = row.reshape(28, 28).astype(np.float64)
    r = np.arange(28)
    return img.sum(axis=1) @ r / img.sum(), img.sum(axis=0) @ r / img.sum()


def ink_box(row):
    rows, cols = np.nonzero(row.reshape(28, 28))
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_mnist_form_image_is_used_pixel_for_pixel(digits, tmp_path, mode):
    x, _ = digits
    path = tmp_path / "digit.png"
    Image.fromarray(x[0]).convert(mode).save(path)
    row = load_digit(path)
    assert row.shape == (1, 784) and row.dtype == np.float32
    expected = x[0].reshape(1, 784).astype(np.float32)
    expected /= 255.0  # as load_mnist(normalize=True)
    np.testing.assert_array_equal(row, expected)


def test_drawing_is_fitted_into_20x20_and_centred_by_mass(digits):
    x, _ = digits
    row = to_mnist(drawing(x[0]))
    assert row.shape == (1, 784) and row.dtype == np.float32
    assert row.min() == 0 and row.max() == 1
    assert max(ink_box(row)) == 20
    cy, cx = centre_of_mass(row)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    # it looks like the MNIST digit it was drawn from
    assert np.corrcoef(row[0], x[0].ravel())[0, 1] > 0.95


def test_aspect_ratio_is_kept():
    page = np.full((400, 300), 250, np.uint8)
    page[100:300, 140:160] = 20  # a stroke 200 tall, 20 wide: a "1"
    row = to_mnist(page)
    assert ink_box(row) == (20, 2)
    cy, cx = centre_of_mass(row)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_light_and_dark_backgrounds_agree(digits):
    x, _ = digits
    dark_on_light = drawing(x[3])
    light_on_dark = 255 - dark_on_light
    np.testing.assert_allclose(to_mnist(dark_on_light), to_mnist(light_on_dark),
                               atol=1e-6)
    # a grey sheet of paper: the background level is taken off
    grey_paper = (dark_on_light * 0.6 + 60).astype(np.uint8)
    assert np.corrcoef(to_mnist(grey_paper)[0], to_mnist(dark_on_light)[0])[0, 1] > 0.99


def test_transparent_background(digits, tmp_path):
    x, _ = digits
    page = drawing(x[5])
    ink = 255 - page
    dark = np.dstack([np.zeros_like(page)] * 3 + [ink])  # black ink, alpha = ink
    light = np.dstack([np.full_like(page, 255)] * 3 + [ink])  # white ink
    opaque = tmp_path / "opaque.png"
    Image.fromarray(page).save(opaque)
    expected = load_digit(opaque)
    for name, rgba in (("dark.png", dark), ("light.png", light)):
        Image.fromarray(rgba, "RGBA").save(tmp_path / name)
        np.testing.assert_allclose(load_digit(tmp_path / name), expected, atol=2e-2)


def test_jpeg_photo_like_input(digits, tmp_path):
    x, _ = digits
    page = drawing(x[2])
    Image.fromarray(page).convert("RGB").save(tmp_path / "d.jpg", quality=70)
    Image.fromarray(page).save(tmp_path / "d.png")
    jpeg, png = load_digit(tmp_path / "d.jpg"), load_digit(tmp_path / "d.png")
    assert np.corrcoef(jpeg[0], png[0])[0, 1] > 0.97


def test_unusable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found: .*nothing.png"):
        load_digit(tmp_path / "nothing.png")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ValueError, match="notes.png: not an image that can be read"):
        load_digit(text)
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 40), 255).save(blank)
    with pytest.raises(ValueError, match="blank.png: no digit found: the picture is blank"):
        load_digit(blank)
    with pytest.raises(ValueError, match="must be a 2-D greyscale picture"):
        to_mnist(np.zeros((5, 5, 3)))


# -- images read by their bit depth ----------------------------------------------

def png_file(path, width, height, bit_depth, color_type, samples=None, *,
             zero_rows=False):
    """A PNG written chunk by chunk (Pillow writes no 16-bit colour PNGs):
    ``samples`` (height, width[, channels]) as rows; else, for a bomb's
    header, one row of zeros that does not fill the declared size, or
    (``zero_rows``) all the declared rows, zeros, compressed as they go."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    if zero_rows:
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
        row = bytes(1 + width * channels * bit_depth // 8)
        deflate = zlib.compressobj(1)
        idat = b"".join(deflate.compress(row * min(1024, height - start))
                        for start in range(0, height, 1024)) + deflate.flush()
    else:
        dtype = ">u2" if bit_depth == 16 else "u1"
        rows = (np.zeros((1, 8), dtype) if samples is None
                else np.asarray(samples).astype(dtype).reshape(height, -1))
        idat = zlib.compress(b"".join(b"\0" + row.tobytes() for row in rows))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth,
                                     color_type, 0, 0, 0))
        + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def wide(page, bits):
    """8-bit grey levels as the same levels at ``bits`` bits (v * 257 ...)."""
    return page.astype(np.uint64) * ((2**bits - 1) // 255)


def pgm16(path, page):
    h, w = page.shape
    path.write_bytes(f"P5\n{w} {h}\n65535\n".encode()
                     + wide(page, 16).astype(">u2").tobytes())
    return path


def grey_palette(page):
    img = Image.fromarray(page, "P")
    img.putpalette([v for g in range(256) for v in (g, g, g)])
    return img


def rgb(page, channels=3):
    return np.dstack([page] * channels)


def png16(path, page, color_type):
    """``page`` as an opaque 16-bit PNG of colour type 2 (RGB), 4 (grey and
    alpha) or 6 (RGBA)."""
    bands = {2: rgb(page), 4: page, 6: rgb(page)}[color_type]
    alpha = [] if color_type == 2 else [np.full(page.shape, 255, np.uint8)]
    samples = wide(np.dstack([bands, *alpha]), 16)
    return png_file(path, page.shape[1], page.shape[0], 16, color_type, samples)


def image(make):
    """A saver that writes the Pillow image ``make(page)``."""
    return lambda page, path: make(page).save(path)


#: The same 8-bit picture saved in other modes and depths: file suffix and
#: how it is written.  Pillow opens each in the mode named (16-bit colour
#: PNGs as 8-bit RGB(A), their high bytes, which are the 8-bit levels).
SAVED_AS = {
    "I;16 png": (".png", image(lambda p: Image.fromarray(wide(p, 16).astype("=u2")))),
    "I;16 tiff": (".tif", image(lambda p: Image.fromarray(wide(p, 16).astype("<u2")))),
    "I;16B tiff": (".tif", image(lambda p: Image.fromarray(wide(p, 16).astype(">u2")))),
    "I 32-bit tiff": (".tif", image(lambda p: Image.fromarray(
        np.round(p * ((2**31 - 1) / 255)).astype(np.int32)))),
    "I 16-bit pgm": (".pgm", lambda p, path: pgm16(path, p)),
    "F tiff": (".tif", image(lambda p: Image.fromarray((p / 255).astype(np.float32)))),
    "RGB 16-bit png": (".png", lambda p, path: png16(path, p, 2)),
    "LA 16-bit png": (".png", lambda p, path: png16(path, p, 4)),
    "RGBA 16-bit png": (".png", lambda p, path: png16(path, p, 6)),
    "P png": (".png", image(grey_palette)),
    "LA png": (".png", image(lambda p: Image.fromarray(
        np.dstack([p, np.full_like(p, 255)]), "LA"))),
    "RGB png": (".png", image(lambda p: Image.fromarray(rgb(p)))),
    "RGBA png": (".png", image(lambda p: Image.fromarray(
        np.dstack([rgb(p), np.full_like(p, 255)])))),
    "CMYK tiff": (".tif", image(lambda p: Image.fromarray(p).convert("CMYK"))),
    "L tiff": (".tif", image(Image.fromarray)),
    "L bmp": (".bmp", image(Image.fromarray)),
}
#: What the file is opened as.
OPENED_AS = {"I;16 png": "I;16", "I;16 tiff": "I;16", "I;16B tiff": "I;16B",
             "I 32-bit tiff": "I", "I 16-bit pgm": "I", "F tiff": "F",
             "RGB 16-bit png": "RGB", "LA 16-bit png": "RGBA",
             "RGBA 16-bit png": "RGBA", "P png": "P", "LA png": "LA",
             "RGB png": "RGB", "RGBA png": "RGBA", "CMYK tiff": "CMYK",
             "L tiff": "L", "L bmp": "L"}


def saved(page, tmp_path, kind):
    suffix, save = SAVED_AS[kind]
    path = tmp_path / (kind.replace(" ", "_").replace(";", "") + suffix)
    save(page, path)
    with Image.open(path) as img:
        assert img.mode == OPENED_AS[kind]
    return path


@pytest.mark.parametrize("kind", list(SAVED_AS))
def test_a_drawing_gives_the_8_bit_row_in_every_mode_and_depth(digits, tmp_path, kind):
    x, _ = digits
    page = drawing(x[0])  # a 7, drawn big, dark on white paper
    Image.fromarray(page).save(tmp_path / "eight_bit.png")
    expected = load_digit(tmp_path / "eight_bit.png")
    # exactly: deeper samples are read as 16-bit levels, and 8-bit levels
    # stored deeper (times 257, rounded at 32 bits or in float) are 16-bit
    # levels
    np.testing.assert_array_equal(load_digit(saved(page, tmp_path, kind)), expected)


@pytest.mark.parametrize("kind", ["I;16 png", "I;16B tiff", "I 32-bit tiff",
                                  "I 16-bit pgm", "F tiff", "RGBA 16-bit png"])
def test_mnist_form_image_at_any_depth_is_used_pixel_for_pixel(digits, tmp_path, kind):
    x, _ = digits
    path = saved(x[0], tmp_path, kind)  # 28x28, white on black
    expected = x[0].reshape(1, 784).astype(np.float32) / 255.0
    row = load_digit(path)
    np.testing.assert_array_equal(row, expected)
    # the 16-bit 7 is not clipped to 255 (which whitens its every stroke)
    with Image.open(path) as img:
        clipped = np.asarray(img.convert("L"))
    if kind != "RGBA 16-bit png":  # which Pillow reads as 8-bit
        assert np.abs(row - to_mnist(clipped)).max() > 0.5


def test_16_bit_transparency_is_the_background(digits, tmp_path):
    x, _ = digits
    page = drawing(x[4])
    Image.fromarray(page).save(tmp_path / "eight.png", transparency=255)
    Image.fromarray(wide(page, 16).astype(np.uint16)).save(tmp_path / "sixteen.png",
                                                           transparency=65535)
    with Image.open(tmp_path / "sixteen.png") as img:
        assert img.mode == "I;16" and img.info["transparency"] == 65535
    np.testing.assert_array_equal(load_digit(tmp_path / "sixteen.png"),
                                  load_digit(tmp_path / "eight.png"))


def test_bilevel_image_is_black_and_white(digits, tmp_path):
    x, _ = digits
    ink = drawing(x[1]) > 127
    Image.fromarray(ink).save(tmp_path / "one_bit.png")
    Image.fromarray(ink.astype(np.uint8) * 255).save(tmp_path / "eight_bit.png")
    with Image.open(tmp_path / "one_bit.png") as img:
        assert img.mode == "1"
    np.testing.assert_array_equal(load_digit(tmp_path / "one_bit.png"),
                                  load_digit(tmp_path / "eight_bit.png"))
    np.testing.assert_array_equal(to_mnist(ink), to_mnist(ink * np.uint8(255)))


@pytest.mark.parametrize("samples, message", [
    (lambda p: p.astype(np.float32), "a mode F image must hold values from 0 (black) "
                                     "to 1 (white), got 0 to 255"),
    (lambda p: p.astype(np.float32) / 255 - 0.5, "got -0.5 to 0.5"),
    (lambda p: np.where(p < 10, np.nan, p / 255).astype(np.float32),
     "pixels must be finite grey levels 0-255, got"),
    (lambda p: np.where(p < 10, np.inf, p / 255).astype(np.float32), "to inf"),
    (lambda p: (p.astype(np.int32) - 128) * 2**20,
     "a mode I image must hold values from 0 (black) to 2.14748e+09 (white), got "),
])
def test_samples_beyond_their_depth_are_named(digits, tmp_path, samples, message):
    x, _ = digits
    path = tmp_path / "odd.tif"
    Image.fromarray(samples(drawing(x[2]))).save(path)
    with pytest.raises(ValueError,
                       match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        load_digit(path)


@pytest.mark.parametrize("pixels, error, message", [
    (np.full((5, 5), np.nan), ValueError,
     "pixels must be finite grey levels 0-255, got 25 NaN"),
    (np.array([[0, 300], [0, 0]]), ValueError, "pixels must be grey levels from 0 to 255, "
                                               "got values from 0 to 300"),
    (np.array([[0, -1.5], [0, 0]]), ValueError, "got values from -1.5 to 0"),
    (np.array([["a", "b"]]), TypeError, "pixels must be grey levels 0-255 (integers or "
                                        "floats), got dtype <U1"),
    (np.ones((2, 2), complex), TypeError, "got dtype complex128"),
])
def test_to_mnist_names_pixels_that_are_not_grey_levels(pixels, error, message):
    with pytest.raises(error, match=re.escape(message)):
        to_mnist(pixels)


# -- pictures too large, and files Pillow cannot read ----------------------------

#: PNG headers declaring more pixels than a digit needs: beyond Pillow's
#: decompression-bomb error, its warning, and load_digit's own limit.
HUGE = {"50000x50000 (Pillow's error)": (50000, 50000, 0),
        "10000x10000 (Pillow's warning)": (10000, 10000, 0),
        "9000x9000 RGBA (MAX_PIXELS)": (9000, 9000, 6),
        "8193x8192 (one column beyond)": (8193, 8192, 0)}


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_picture_is_a_value_error_naming_the_file(tmp_path, name):
    import warnings

    width, height, color_type = HUGE[name]
    path = png_file(tmp_path / "huge.png", width, height, 8, color_type)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's warning does not come out
        with pytest.raises(ValueError, match=re.escape(f"{path}: ")) as info:
            load_digit(path)
    message = str(info.value)
    assert (f"{width} x {height} pixels, more than the 67108864 (8192 x 8192)" in message
            or "could be decompression bomb" in message), message


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="reads the peak memory from Linux's /proc")
def test_huge_pictures_are_refused_before_decoding(tmp_path):
    import subprocess
    import sys

    from conftest import cli_env

    for name, (width, height, color_type) in HUGE.items():
        png_file(tmp_path / f"{width}x{height}.png", width, height, 8, color_type)
    # a header alone allocates little even when decoded (Pillow leaves the
    # pages untouched): this one holds its 201 MB of RGB pixels, as zeros
    png_file(tmp_path / "filled.png", MAX_SIDE + 1, MAX_SIDE, 8, 2, zero_rows=True)
    # VmHWM, the process's peak resident memory (ru_maxrss would carry the
    # peak of the pytest process it was forked from across exec)
    script = ("import sys\n"
              "from mnist_fast.image import load_digit\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n"
              "        load_digit(path)\n"
              "    except ValueError as exc:\n"
              "        pass\n"
              "    else:\n"
              "        sys.exit(f'{path} was read')\n"
              "print(next(line.split()[1] for line in open('/proc/self/status')\n"
              "           if line.startswith('VmHWM:')))\n")
    result = subprocess.run([sys.executable, "-c", script,
                             *sorted(map(str, tmp_path.glob("*.png")))],
                            cwd=tmp_path, env=cli_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    peak_kib = int(result.stdout)
    # decoded, filled.png alone would take 201 MB
    assert peak_kib < 150 * 1024, peak_kib


def test_predict_reports_a_huge_picture_and_goes_on(digits, tmp_path):
    from conftest import run_cli

    from mnist_fast import TwoLayerNet

    x, _ = digits
    TwoLayerNet(784, 10, 10, seed=0).save(tmp_path / "model.npz")
    bomb = png_file(tmp_path / "bomb.png", 50000, 50000, 8, 0)
    Image.fromarray(x[0]).save(tmp_path / "good.png")
    result = run_cli("predict", "model.npz", "bomb.png", "good.png", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {bomb.name}: not an image that can be read (" in result.stderr
    assert result.stdout.startswith("good.png: ")


def valid_png(tmp_path):
    page = np.full((40, 30), 255, np.uint8)
    page[5:35, 12:18] = 0
    path = tmp_path / "valid.png"
    Image.fromarray(page).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("spoil", [
    lambda data: data[:len(data) // 2],  # truncated in the pixel data
    lambda data: data[:40],  # truncated after the header
    lambda data: data[:60] + bytes([data[60] ^ 0xFF]) + data[61:],  # a flipped byte
    lambda data: data[:8],  # the signature alone
    lambda data: b"GIF89a" + data[8:],  # a GIF signature on PNG chunks
    lambda data: b"BM" + bytes(60),  # a BMP header of zeros
], ids=["half", "header only", "flipped byte", "signature", "GIF signature", "BMP zeros"])
def test_damaged_files_are_value_errors_naming_them(tmp_path, spoil):
    path = tmp_path / "damaged.png"
    path.write_bytes(spoil(valid_png(tmp_path)))
    with pytest.raises(ValueError, match=re.escape(f"{path}: ")):
        load_digit(path)
