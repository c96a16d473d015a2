"""Model files are checked against limits before anything is allocated.

A model file is untrusted: it may declare arrays (in their ``.npy``
headers, in the zip's sizes, in ``layer_sizes``) far larger than it holds.
``TwoLayerNet.load`` must refuse such a file with a ValueError naming it,
having allocated nothing of what it declares (mnist_fast/model_file.py).
"""

import io
import os
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from conftest import (cli_env, model_members, npy_bytes, patch_central_directory,
                      write_zip)

SIZES = (20, 7, 4)
#: Far more than any test machine has: a file that got these allocated
#: would end in a MemoryError, not the ValueError required.
HUGE = 10**6


@pytest.fixture
def members():
    return model_members(TwoLayerNet(*SIZES, seed=3, weight_init_std=0.5))


class NeverBuilt(TwoLayerNet):
    """A network class whose construction fails the test: load must refuse
    the file before it builds the network."""

    def __init__(self, *args, **kwargs):
        raise AssertionError(f"built a network of sizes {args}")


def load_refused(path, message, cls=NeverBuilt):
    """``cls.load(path)`` is a ValueError naming ``path`` and matching
    ``message``, with little allocated; the network is never built unless
    ``cls`` is ``TwoLayerNet`` (for a file whose headers are right)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as info:
            cls.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value).startswith(f"{path}: "), info.value
    assert peak < 2**20, f"{peak} bytes allocated to refuse {path}"
    return info.value


def test_valid_stored_and_deflated_files_load(tmp_path, members):
    net = TwoLayerNet(*SIZES, seed=3, weight_init_std=0.5)
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = write_zip(tmp_path / f"m{compression}.npz", members, compression)
        loaded = TwoLayerNet.load(path)
        for key, value in net.params.items():
            np.testing.assert_array_equal(loaded.params[key], value)
            assert loaded.params[key].flags.writeable
    path = tmp_path / "savez_compressed.npz"
    np.savez_compressed(path, **{k: np.lib.format.read_array(
        io.BytesIO(v)) for k, v in members.items()})
    assert TwoLayerNet.load(path).params["W2"].tolist() == net.params["W2"].tolist()


def test_a_deflated_model_of_zeros_loads(tmp_path):
    # zeros deflate close to deflate's limit (1032:1): the bound is not
    # tighter than deflate itself
    net = TwoLayerNet(784, 1000, 10, seed=0)
    net.params = {k: np.zeros_like(v) for k, v in net.params.items()}
    path = write_zip(tmp_path / "zeros.npz", model_members(net),
                     zipfile.ZIP_DEFLATED)
    info = zipfile.ZipFile(path).getinfo("W1.npy")
    assert info.file_size > 1000 * info.compress_size
    assert not TwoLayerNet.load(path).params["W1"].any()


@pytest.mark.parametrize("shape", [(HUGE, HUGE), (HUGE * HUGE,), (20, HUGE),
                                   (2**62, 2), (-1, 7), (20, 7, 1)])
@pytest.mark.parametrize("key", ["W1", "b2", "layer_sizes", "format"])
def test_an_npy_header_declaring_other_bytes_than_it_holds(tmp_path, members,
                                                          key, shape):
    members[key] = npy_bytes(shape=shape, data=bytes(1000))
    path = write_zip(tmp_path / "lies.npz", members)
    load_refused(path, f"damaged model file: array '{key}' declares (the )?shape")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("size", [2**31, 2**32 - 1, 10**8])
def test_a_zip_member_declaring_more_than_it_can_hold(tmp_path, members,
                                                      compression, size):
    path = write_zip(tmp_path / "bomb.npz", members, compression)
    patch_central_directory(path, "W1", file_size=size)
    load_refused(path, "damaged model file: array 'W1' says it holds "
                       f"{size} bytes, more than its")


def test_a_zip_member_beyond_the_end_of_the_file(tmp_path, members):
    path = write_zip(tmp_path / "cut.npz", members)
    patch_central_directory(path, "b1", compress_size=2**31, file_size=2**31)
    load_refused(path, "array 'b1' says it takes 2147483648 bytes .* beyond "
                       "the end")


def test_a_zip_bomb_is_not_inflated_beyond_its_declared_shape(tmp_path, members):
    # W1's deflate stream inflates to 64 MB; the zip says it holds what its
    # .npy header declares (20 x 7 float64): reading stops there, and the
    # wrong CRC shows the member is damaged
    bomb = members["W1"] + bytes(64 * 2**20)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in {**members, "W1": bomb}.items():
            z.writestr(f"{name}.npy", data)
    patch_central_directory(path, "W1", file_size=len(members["W1"]))
    load_refused(path, "damaged model file: array 'W1': Bad CRC-32",
                 TwoLayerNet)


@pytest.mark.parametrize("sizes, message", [
    ((784, 10**9, 10), r"params\['W1'\] must have shape \(784, 1000000000\), got \(20, 7\)"),
    ((10**9, 10**9, 10**9), r"params\['W1'\] must have shape"),
    ((2**31, 7, 4), "input_size must be an integer between 1 and 2147483647"),
    ((20, 0, 4), "hidden_size must be a positive integer, got 0"),
    ((20, 7, 2**63 - 1), r"params\['W2'\] must have shape \(7, 9223372036854775807\)"),
])
def test_huge_or_impossible_layer_sizes_are_refused_before_building(
        tmp_path, members, sizes, message):
    members["layer_sizes"] = npy_bytes(np.array(sizes, dtype=np.uint64))
    path = write_zip(tmp_path / "sizes.npz", members)
    load_refused(path, message)


def test_huge_layer_sizes_with_matching_headers_but_no_data(tmp_path, members):
    sizes = (784, 10**9, 10)
    members["layer_sizes"] = npy_bytes(np.array(sizes))
    for key, shape in {"W1": (784, 10**9), "b1": (10**9,),
                       "W2": (10**9, 10), "b2": (10,)}.items():
        members[key] = npy_bytes(shape=shape)
    load_refused(write_zip(tmp_path / "empty.npz", members),
                 r"array 'W1' declares shape \(784, 1000000000\) of float64 "
                 r"\(6272000000000 bytes\) but holds 0 bytes")


@pytest.mark.parametrize("key, array", [
    ("format", np.array("x" * 300)),
    ("format_version", np.arange(200)),
    ("layer_sizes", np.arange(200)),
])
def test_header_arrays_are_small(tmp_path, members, key, array):
    members[key] = npy_bytes(array)
    load_refused(write_zip(tmp_path / "big.npz", members),
                 f"array '{key}' has {array.nbytes} bytes .* at most 1024")


@pytest.mark.parametrize("key", ["W1", "b2"])
def test_truncated_parameter_data_is_damage_not_pickle(tmp_path, members, key):
    members[key] = members[key][:-8]
    error = load_refused(write_zip(tmp_path / "short.npz", members),
                         f"array '{key}' declares shape .* but holds")
    assert "pickle" not in str(error)


@pytest.mark.parametrize("header, message", [
    (b"\x93NUMPY\x03\x00", r"\.npy format version \(3, 0\)"),
    (b"\x93NUMPZ\x01\x00", "magic string"),
    (b"\x93NUM", "EOF|magic"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    \n", "descr|keys|Header"),
    (b"\x93NUMPY\x01\x00\x08\x00((((((((", "Cannot parse header|EOF in multi-line statement"),
])
def test_damaged_npy_headers(tmp_path, members, header, message):
    members["b1"] = header
    load_refused(write_zip(tmp_path / "npy.npz", members),
                 f"damaged model file: array 'b1': .*({message})")


def test_npy_version_2_headers_are_read(tmp_path, members):
    members = {k: npy_bytes(np.lib.format.read_array(
        io.BytesIO(v)), version=(2, 0)) for k, v in members.items()}
    assert TwoLayerNet.load(write_zip(tmp_path / "v2.npz", members)).hidden_size == 7


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_compression_methods_are_refused(tmp_path, members, compression):
    # bzip2 inflates far beyond deflate's 1032:1: no bound from its size
    load_refused(write_zip(tmp_path / "bz.npz", members, compression),
                 f"array 'format' is compressed by method {compression}")


def test_encrypted_members_are_refused(tmp_path, members):
    path = write_zip(tmp_path / "secret.npz", members)
    patch_central_directory(path, "format", flag_bits=1)
    load_refused(path, "array 'format' is encrypted")


@pytest.mark.parametrize("descr", ["|O", [("a", "|O")], "<i8", "<c16",
                                   [("a", "<f8")], ("<f8", (3,))])
def test_parameter_dtypes_are_checked_from_the_header(tmp_path, members, descr):
    dtype = np.dtype(descr)
    members["b1"] = npy_bytes(shape=(7,), descr=np.lib.format.dtype_to_descr(dtype),
                              data=bytes(7 * dtype.itemsize))
    load_refused(write_zip(tmp_path / "dtype.npz", members),
                 r"cannot be read without pickle|params\['b1'\] must be a "
                 "float array")


def test_unreadable_members_are_damage(tmp_path, members):
    path = write_zip(tmp_path / "crc.npz", members, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    name = data.find(b"W2.npy")  # its local header; the data follows
    data[name + 40:name + 60] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="crc.npz: damaged model file: array 'W2'"):
        TwoLayerNet.load(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs a user whom permissions stop")
def test_an_unreadable_file_is_a_permission_error(tmp_path, members):
    path = write_zip(tmp_path / "locked.npz", members)
    path.chmod(0)
    with pytest.raises(PermissionError, match="locked.npz"):
        TwoLayerNet.load(path)


#: A deflated model file of 1-2**23-2 zeros (200 MB of parameters, 200 KB
#: of file), loaded where only 50 MB more of address space are left.
TOO_LARGE = textwrap.dedent("""
    import resource, sys, zipfile, zlib
    import numpy as np
    from mnist_fast import TwoLayerNet, model_file

    H = 2**23
    arrays = {"format": np.array(model_file.FORMAT),
              "format_version": np.array(1), "layer_sizes": np.array([1, H, 2])}
    path = sys.argv[1]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, value in arrays.items():
            with z.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, value)
        for key, shape in {"W1": (1, H), "b1": (H,), "W2": (H, 2),
                           "b2": (2,)}.items():
            with z.open(key + ".npy", "w") as f:
                np.lib.format.write_array_header_1_0(f, {
                    "descr": "<f8", "fortran_order": False, "shape": shape})
                zeros = bytes(2**20)
                for _ in range(8 * int(np.prod(shape)) // 2**20):
                    f.write(zeros)
                f.write(bytes(8 * int(np.prod(shape)) % 2**20))
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS,
                       (size + 50 * 2**20, resource.RLIM_INFINITY))
    try:
        TwoLayerNet.load(path, backend="numpy")
    except MemoryError as exc:
        print("MemoryError", exc)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux")
def test_a_file_that_really_holds_too_large_a_network(tmp_path):
    path = tmp_path / "large.npz"
    run = subprocess.run([sys.executable, "-c", TOO_LARGE, str(path)],
                         cwd=tmp_path, env=cli_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (f"MemoryError {path}: a 1-8388608-2 "
                                  "network does not fit in memory")
