"""The book's numbers, each in one place.

The network and training script of the book's ch. 4 (``two_layer_net.py``
and ``train_neuralnet.py``), and the two constants of its numerics.  The
compiled kernels receive the numerics as arguments, so that these are the
only copies.
"""

#: The network: 784 pixels, 50 hidden units, 10 classes.
INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE = 784, 50, 10
#: Standard deviation of the Gaussian initial weights.
WEIGHT_INIT_STD = 0.01
#: The training script: iterations, mini-batch size, learning rate.
ITERS_NUM, BATCH_SIZE, LEARNING_RATE = 10000, 100, 0.1
#: The step of the numerical gradient's central differences.
H = 1e-4
#: Added to the probability inside the log of the cross-entropy.
LOG_GUARD = 1e-7
#: The hidden layer's activations: ch. 4's sigmoid and ch. 5's ``Relu``
#: (the compiled kernels know them by their positions here).
ACTIVATIONS = ("sigmoid", "relu")
