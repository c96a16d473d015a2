"""The book's ch. 5 network, for ch. 5's scripts: ``from mnist_fast.ch05
import TwoLayerNet``.

The module is named after the book's folder ``ch05/``, whose
``two_layer_net.py`` its scripts import, so that the one changed import
line says which chapter's class it replaces.  :class:`TwoLayerNet` is
``mnist_fast.TwoLayerNet(..., activation="relu")`` with the book's ch. 5
constructor and ``predict`` (the scores); everything else is the public
network's (checked inputs, both backends, ``params``, ``save`` ...).
"""

from . import two_layer_net


class TwoLayerNet(two_layer_net.TwoLayerNet):
    """The book's ch. 5 ``TwoLayerNet``: ``Affine`` -> ``Relu`` ->
    ``Affine`` -> ``SoftmaxWithLoss``.

    :meth:`predict` returns the scores of the last ``Affine`` (no softmax);
    ``loss`` is ``SoftmaxWithLoss`` on them (the book's cross-entropy with
    its 1e-7 guard), ``accuracy`` the fraction of rows whose largest score
    is the label; ``gradient`` is the layers' backward pass (``Relu``: 0
    where its input was ``<= 0``), ``numerical_gradient`` ch. 4's central
    differences of ``loss``.  The yardstick is the book's code,
    :class:`mnist_fast.reference.LayerNet`.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer sizes (784, 50, 10 in the book).
    weight_init_std : float, default 0.01
        Standard deviation of the Gaussian initial weights, drawn as the
        book draws them: with ``seed=None``, from NumPy's global generator
        (so ``np.random.seed(0)`` first gives the book's weights).
    activation : {"relu"}
        Only ch. 5's ``Relu``; the keyword is there for
        :meth:`~mnist_fast.TwoLayerNet.load`, which passes a model file's.
    backend, seed, num_threads
        As for :class:`mnist_fast.TwoLayerNet`.
    """

    _scores = True
    ACTIVATIONS = ("relu",)

    def __init__(self, input_size, hidden_size, output_size,
                 weight_init_std=0.01, *, activation="relu", backend="auto",
                 seed=None, num_threads=None):
        super().__init__(input_size, hidden_size, output_size,
                         weight_init_std, activation=activation,
                         backend=backend, seed=seed, num_threads=num_threads)

    def __repr__(self):
        return (f"mnist_fast.ch05.TwoLayerNet({self.input_size}, "
                f"{self.hidden_size}, {self.output_size}, "
                f"backend={self.backend!r})")

    def predict(self, x):
        """The scores ``relu(x @ W1 + b1) @ W2 + b2``, as the book's ch. 5
        ``predict`` (no softmax).

        Parameters
        ----------
        x : array_like of shape (n_samples, input_size)

        Returns
        -------
        numpy.ndarray of shape (n_samples, output_size), float64
        """
        return super().predict(x)
