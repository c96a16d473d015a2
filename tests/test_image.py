"""mnist_fast.image: a picture of a digit made into an MNIST row, as MNIST was made."""

import numpy as np
import pytest
from PIL import Image

from mnist_fast.image import load_digit, to_mnist


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
