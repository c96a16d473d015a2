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
