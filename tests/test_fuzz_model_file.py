"""Fuzzing model files: whatever file ``TwoLayerNet.load`` is given, only
the documented errors come out -- ``FileNotFoundError`` or a ``ValueError``
that starts with the file's name -- never a MemoryError, a crash or an
error of numpy or zipfile; a valid file gives back the network saved.

Files are drawn as random bytes, valid model files damaged byte by byte or
cut short, archives whose members have random ``.npy`` headers (shapes
huge, negative or wrong; dtypes of every kind) or random contents, random
``layer_sizes``, and every zip compression method.  derandomize=True: CI
replays the same examples every run.
"""

import os
import tempfile
import zipfile

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnist_fast import TwoLayerNet, model_file
from conftest import model_members, npy_bytes, write_zip

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                database=None, suppress_health_check=list(HealthCheck))

#: Every method zipfile has; those of np.savez(_compressed) twice as often.
COMPRESSIONS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED] * 2 + [
    zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
DESCRS = ["<f8", ">f8", "<f4", "<f2", "<i8", "|u1", "|b1", "<c16", "|O",
          "<U22", "|S3", "<M8[s]", "|V8", [("a", "<f8")], ("<f8", (2,))]
#: Dimensions: small, zero, negative, huge.
DIMS = st.one_of(st.integers(-2, 9), st.sampled_from([10**6, 2**31, 2**62,
                                                      2**64, 10**30]))

#: Layer sizes: small, zero, negative, huge (int64).
LAYER = st.one_of(st.integers(-2, 9), st.sampled_from([10**6, 2**31, 2**62,
                                                       2**63 - 1]))


def small_net(draw):
    sizes = draw(st.tuples(st.integers(1, 5), st.integers(1, 5),
                           st.integers(2, 5)))
    return TwoLayerNet(*sizes, seed=draw(st.integers(0, 9)), backend="numpy")


@st.composite
def npy_members(draw):
    """A ``.npy`` member: a random header over random data, or a real
    array of any dtype and shape."""
    if draw(st.booleans()):
        descr = draw(st.sampled_from(DESCRS))
        return npy_bytes(shape=tuple(draw(st.lists(DIMS, max_size=3))),
                         descr=descr, fortran_order=draw(st.booleans()),
                         data=draw(st.binary(max_size=200)),
                         version=draw(st.sampled_from([(1, 0), (2, 0)])))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8,
                                  np.bool_, np.complex128, "U5"]))
    return npy_bytes(draw(hnp.arrays(dtype, hnp.array_shapes(
        min_dims=0, max_dims=3, min_side=0, max_side=6))))


SPOILS = ["valid", "member", "layer_sizes", "declared", "drop", "extra"]


@st.composite
def archives(draw, spoils=SPOILS, compressions=COMPRESSIONS):
    """The bytes of a model file, valid or spoiled in one of many ways."""
    net = small_net(draw)
    members = model_members(net)
    how = draw(st.sampled_from(spoils))
    if how == "member":
        members[draw(st.sampled_from(model_file.KEYS))] = draw(npy_members())
    elif how == "layer_sizes":
        members["layer_sizes"] = npy_bytes(np.array(draw(st.lists(
            st.integers(-1, 2**63 - 1) | st.integers(0, 6), min_size=0,
            max_size=4)), dtype=np.int64))
    elif how == "declared":  # headers that fit layer_sizes, over no data
        sizes = draw(st.tuples(LAYER, LAYER, LAYER))
        members["layer_sizes"] = npy_bytes(np.array(sizes, dtype=np.int64))
        D, H, K = sizes
        for key, shape in {"W1": (D, H), "b1": (H,), "W2": (H, K),
                           "b2": (K,)}.items():
            members[key] = npy_bytes(shape=shape,
                                     data=draw(st.binary(max_size=64)))
    elif how == "drop":
        del members[draw(st.sampled_from(model_file.KEYS))]
    elif how == "extra":
        members["other"] = draw(npy_members())
    compression = draw(st.sampled_from(compressions))
    with tempfile.TemporaryDirectory() as folder:
        path = write_zip(os.path.join(folder, "m.npz"), members, compression)
        data = open(path, "rb").read()
    return how, compression, net, data


@st.composite
def damaged(draw, data):
    """``data`` with bytes changed, cut short or with bytes inserted."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        change = draw(st.sampled_from(["flip", "cut", "insert"]))
        if change == "flip":
            data[at] = draw(st.integers(0, 255))
        elif change == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def load_outcome(data):
    """``TwoLayerNet.load`` of a file holding ``data``: the network, or the
    documented error, checked."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        with open(path, "wb") as f:
            f.write(data)
        try:
            return TwoLayerNet.load(path, backend="numpy")
        except ValueError as exc:
            assert str(exc).startswith(f"{path}: "), repr(exc)
            event(f"ValueError: {str(exc)[len(path) + 2:][:30]}")
            return exc


def check_loaded(net):
    """A loaded network is whole: finite parameters of its sizes."""
    assert {k: v.shape for k, v in net.params.items()} == net.param_shapes
    assert all(v.dtype == np.float64 and np.isfinite(v).all()
               for v in net.params.values())


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes(data):
    result = load_outcome(data)
    assert isinstance(result, ValueError)


@FUZZ
@given(archive=archives())
def test_any_archive(archive):
    how, compression, saved, data = archive
    result = load_outcome(data)
    if isinstance(result, ValueError):
        assert how != "valid" or compression not in (zipfile.ZIP_STORED,
                                                     zipfile.ZIP_DEFLATED)
        return
    check_loaded(result)
    if how in ("valid", "extra"):  # what was saved comes back
        assert (result.input_size, result.hidden_size, result.output_size) == (
            saved.input_size, saved.hidden_size, saved.output_size)
        for key, value in saved.params.items():
            np.testing.assert_array_equal(result.params[key], value)


@FUZZ
@given(data=st.data())
def test_damaged_valid_files(data):
    _, _, saved, valid = data.draw(archives(
        ["valid"], [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    result = load_outcome(data.draw(damaged(valid)))
    if not isinstance(result, ValueError):
        check_loaded(result)
        event("damage not seen (a byte of a parameter, say)")
