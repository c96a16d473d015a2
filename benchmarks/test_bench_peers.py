"""mnist_fast next to PyTorch eager (float32, where installed), per call at
batch 100 and over the book's loop: compare with the groups of
test_bench_forward.py and test_bench_gradients.py."""

import numpy as np
import pytest

from peers import TorchNet, one_hot, torch_book_loop, torch_or_skip
from mnist_fast import TwoLayerNet


@pytest.fixture(scope="module")
def torch_net():
    torch = torch_or_skip()
    return torch, TorchNet(torch, TwoLayerNet(784, 50, 10, seed=0).params)


@pytest.mark.parametrize("call", ["gradient", "loss", "predict"])
def test_torch_eager_per_call(benchmark, batch, torch_net, call):
    torch, net = torch_net
    benchmark.group = f"{call}, batch 100"
    x, t = net.tensors(batch[0], one_hot(batch[1]))
    args = (x,) if call == "predict" else (x, t)
    benchmark(getattr(net, call), *args)


def test_torch_eager_accuracy_70000_images(benchmark, mnist, torch_net):
    torch, net = torch_net
    benchmark.group = "accuracy, 60,000 train + 10,000 test images"
    (x_train, t_train), (x_test, t_test) = mnist
    sets = [(torch.from_numpy(x), torch.from_numpy(t.astype(np.int64)))
            for x, t in ((x_train, t_train), (x_test, t_test))]
    benchmark.pedantic(lambda: [net.accuracy(x, t) for x, t in sets], rounds=5,
                       warmup_rounds=1)


def test_torch_eager_book_loop(benchmark, mnist, torch_net):
    """The book's script in PyTorch: 10,000 iterations of gradient, update,
    loss; the two accuracies once per epoch (data loaded beforehand)."""
    torch, _ = torch_net
    benchmark.group = "the book's ch. 4 script (backprop), whole"
    (x_train, t_train), (x_test, t_test) = mnist
    xs = [torch.from_numpy(x) for x in (x_train, x_test)]
    labels = [torch.from_numpy(t.astype(np.int64)) for t in (t_train, t_test)]
    t_hot = torch.from_numpy(one_hot(t_train))

    def run():
        np.random.seed(0)
        net = TorchNet(torch, TwoLayerNet(784, 50, 10).params)
        return torch_book_loop(net, xs, labels, t_hot)[1][1]

    assert benchmark.pedantic(run, rounds=1) > 0.93
