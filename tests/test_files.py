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
