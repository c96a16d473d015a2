"""Peers for the benchmarks, written as their users write them: the book's
network in PyTorch eager mode (float32, the book's formulas) and as a
float32 NumPy loop with preallocated arrays.  Used only where installed."""

import numpy as np


class TorchNet:
    """The book's TwoLayerNet in PyTorch eager mode: the same formulas
    (sigmoid hidden layer, softmax, the +1e-7 guard, the book's backprop)."""

    def __init__(self, torch, params, dtype="float32"):
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        self.params = {k: torch.tensor(v, dtype=self.dtype) for k, v in params.items()}

    def tensors(self, x, t):
        x = self.torch.as_tensor(x, dtype=self.dtype)
        t = self.torch.as_tensor(t, dtype=self.dtype)
        return x, t

    def predict(self, x):
        p, torch = self.params, self.torch
        z1 = torch.sigmoid(x @ p["W1"] + p["b1"])
        return torch.softmax(z1 @ p["W2"] + p["b2"], dim=1)

    def loss(self, x, t):
        y = self.predict(x)
        return -(t * self.torch.log(y + 1e-7)).sum() / x.shape[0]

    def accuracy(self, x, labels):
        return (self.predict(x).argmax(dim=1) == labels).float().mean().item()

    def gradient(self, x, t):
        p, torch = self.params, self.torch
        z1 = torch.sigmoid(x @ p["W1"] + p["b1"])
        y = torch.softmax(z1 @ p["W2"] + p["b2"], dim=1)
        dy = (y - t) / x.shape[0]
        dz1 = (dy @ p["W2"].T) * (1 - z1) * z1
        return {"W1": x.T @ dz1, "b1": dz1.sum(0), "W2": z1.T @ dy, "b2": dy.sum(0)}


def torch_or_skip():
    import pytest

    return pytest.importorskip("torch")


def one_hot(t, k=10):
    out = np.zeros((t.shape[0], k), dtype=np.float32)
    out[np.arange(t.shape[0]), t] = 1
    return out


def torch_book_loop(net, xs, labels, t_hot, iters=10000, batch=100, lr=0.1):
    """The book's ch. 4 loop on a :class:`TorchNet`: ``iters`` iterations of
    gradient, update and the post-update loss (recorded, as the book's
    ``train_loss_list``); the two accuracies every epoch (600 iterations),
    batches drawn by ``np.random.choice`` as the book draws them.

    ``xs`` and ``labels`` are the (train, test) tensors, ``t_hot`` the
    training labels one-hot.  Returns the recorded losses and the last
    (train, test) accuracies.
    """
    n = xs[0].shape[0]
    per_epoch = max(n // batch, 1)
    losses, accs = [], None
    for i in range(iters):
        mask = net.torch.from_numpy(np.random.choice(n, batch))
        x, t = xs[0][mask], t_hot[mask]
        grad = net.gradient(x, t)
        for key in ("W1", "b1", "W2", "b2"):
            net.params[key] -= lr * grad[key]
        losses.append(net.loss(x, t).item())
        if i % per_epoch == 0:
            accs = net.accuracy(xs[0], labels[0]), net.accuracy(xs[1], labels[1])
    return losses, accs


class NumpyNet32:
    """The book's ch. 4 network as a float32 NumPy loop with preallocated
    arrays, as a NumPy user who minds speed writes it: the book's formulas
    (sigmoid hidden layer, max-shifted softmax, the +1e-7 guard of the
    cross-entropy, the book's backprop and ``p -= lr * grad``), every
    product and elementwise step written into arrays allocated once for the
    batch size (``out=``), integer labels instead of one-hot rows
    (``y - t`` is ``y`` with 1 taken off each label's entry).

    ``accuracy`` takes the argmax of the output layer's scores, skipping the
    softmax (which keeps the order), in chunks of ``chunk`` rows through
    buffers of their own.
    """

    def __init__(self, params, batch, chunk=10000):
        self.p = {k: np.array(v, dtype=np.float32) for k, v in params.items()}
        hidden, out = self.p["W2"].shape
        f32 = lambda *shape: np.empty(shape, dtype=np.float32)  # noqa: E731
        self.x, self.a1, self.a2 = f32(batch, 784), f32(batch, hidden), f32(batch, out)
        self.g = {k: np.empty_like(v) for k, v in self.p.items()}
        self.da1, self.tmp = f32(batch, hidden), f32(batch, hidden)
        self.rows = np.arange(batch)
        self.chunk = chunk, f32(chunk, hidden), f32(chunk, out)

    def _forward(self, x, a1, a2):
        """a1 = sigmoid(x W1 + b1), a2 = a1 W2 + b2, in place."""
        p = self.p
        np.dot(x, p["W1"], out=a1)
        a1 += p["b1"]
        np.negative(a1, out=a1)
        np.exp(a1, out=a1)
        a1 += 1
        np.reciprocal(a1, out=a1)
        np.dot(a1, p["W2"], out=a2)
        a2 += p["b2"]

    def _softmax(self):
        y = self.a2
        y -= y.max(axis=1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=1, keepdims=True)
        return y

    def take(self, x_train, idx):
        """The batch's rows of ``x_train`` into the preallocated ``x``."""
        np.take(x_train, idx, axis=0, out=self.x)

    def loss(self, labels):
        """The cross-entropy of the batch in ``x`` (see :meth:`take`)."""
        self._forward(self.x, self.a1, self.a2)
        y = self._softmax()
        return float(-np.log(y[self.rows, labels] + 1e-7).sum() / len(labels))

    def step(self, labels, lr):
        """One SGD step on the batch in ``x``: gradient, then ``p -= lr * g``."""
        p, g, z1 = self.p, self.g, self.a1
        self._forward(self.x, z1, self.a2)
        dy = self._softmax()
        dy[self.rows, labels] -= 1
        dy /= len(labels)
        np.dot(z1.T, dy, out=g["W2"])
        dy.sum(axis=0, out=g["b2"])
        np.dot(dy, p["W2"].T, out=self.da1)
        np.subtract(1, z1, out=self.tmp)       # sigmoid_grad: (1 - z) z
        self.tmp *= z1
        self.da1 *= self.tmp                   # dz1
        np.dot(self.x.T, self.da1, out=g["W1"])
        self.da1.sum(axis=0, out=g["b1"])
        for k in p:
            g[k] *= lr
            p[k] -= g[k]

    def accuracy(self, x, labels):
        size, a1, a2 = self.chunk
        hits = 0
        for start in range(0, x.shape[0], size):
            xs = x[start:start + size]
            n = xs.shape[0]
            self._forward(xs, a1[:n], a2[:n])
            hits += int(np.count_nonzero(a2[:n].argmax(axis=1) == labels[start:start + n]))
        return hits / x.shape[0]


def numpy32_book_loop(net, x_train, t_train, x_test, t_test, iters=10000,
                      batch=100, lr=0.1, seed=0):
    """The book's ch. 4 loop on a :class:`NumpyNet32`: batches drawn with
    replacement, gradient and update, the post-update loss recorded, the two
    accuracies every epoch.  Returns the losses and the last accuracies."""
    rng = np.random.default_rng(seed)
    n = x_train.shape[0]
    per_epoch = max(n // batch, 1)
    losses = np.empty(iters, dtype=np.float32)
    accs = None
    for i in range(iters):
        idx = rng.integers(0, n, batch)
        labels = t_train[idx]
        net.take(x_train, idx)
        net.step(labels, lr)
        losses[i] = net.loss(labels)
        if i % per_epoch == 0:
            accs = net.accuracy(x_train, t_train), net.accuracy(x_test, t_test)
    return losses, accs
