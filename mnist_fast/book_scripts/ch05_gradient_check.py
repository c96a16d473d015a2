# coding: utf-8
# The book's ch. 5 gradient check (gradient_check.py), as printed, with
# only its two imports changed to mnist_fast.
import sys, os
sys.path.append(os.pardir)  # the book's setting for imports from the parent folder
import numpy as np
from mnist_fast import load_mnist
from mnist_fast.ch05 import TwoLayerNet

# read the data
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

x_batch = x_train[:3]
t_batch = t_train[:3]

grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)

for key in grad_numerical.keys():
    diff = np.average( np.abs(grad_backprop[key] - grad_numerical[key]) )
    print(key + ":" + str(diff))
