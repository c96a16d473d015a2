"""Files written by mnist_fast get the permissions a user expects."""

import os
import stat
import sys

import pytest

from mnist_fast import TwoLayerNet

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="no POSIX permissions")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027])
def test_a_new_model_file_follows_the_umask(tmp_path, umask):
    net = TwoLayerNet(4, 3, 2, seed=0)
    before = os.umask(umask)
    try:
        net.save(tmp_path / "net.npz")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(before)
    assert _mode(tmp_path / "net.npz") == _mode(tmp_path / "plain") == 0o666 & ~umask


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640, 0o664])
def test_a_replaced_model_file_keeps_its_permissions(tmp_path, mode):
    path = tmp_path / "net.npz"
    TwoLayerNet(4, 3, 2, seed=0).save(path)
    os.chmod(path, mode)
    TwoLayerNet(4, 3, 2, seed=1).save(path)
    assert _mode(path) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


@pytest.mark.parametrize("make", ["fifo", "folder", "device"])
def test_what_is_not_a_regular_file_is_never_replaced(tmp_path, make):
    if make == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif make == "folder":
        path = tmp_path / "folder"
        path.mkdir()
    else:  # a node of /dev/null's device, not /dev/null itself
        path = tmp_path / "null"
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except (OSError, AttributeError):
            pytest.skip("cannot make a device node here (not root)")
    kind = stat.S_IFMT(os.stat(path).st_mode)
    with pytest.raises(FileExistsError, match="not a regular file"):
        TwoLayerNet(4, 3, 2, seed=0).save(path)
    assert stat.S_IFMT(os.stat(path).st_mode) == kind
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
