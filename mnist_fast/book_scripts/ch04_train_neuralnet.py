# coding: utf-8
# The book's ch. 4 training script (train_neuralnet.py), as printed, with
# only its two imports changed to mnist_fast.  As in the book, the
# numerical gradient is on; comment it and uncomment the next line for
# backpropagation (ch. 5).
import sys, os
sys.path.append(os.pardir)  # the book's setting for imports from the parent folder
import numpy as np
import matplotlib.pyplot as plt
from mnist_fast import load_mnist, TwoLayerNet

# read the data
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

iters_num = 10000  # set the number of iterations as you see fit
train_size = x_train.shape[0]
batch_size = 100
learning_rate = 0.1

train_loss_list = []
train_acc_list = []
test_acc_list = []

# iterations per epoch
iter_per_epoch = max(train_size / batch_size, 1)

for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch = x_train[batch_mask]
    t_batch = t_train[batch_mask]

    # the gradient
    grad = network.numerical_gradient(x_batch, t_batch)
    #grad = network.gradient(x_batch, t_batch)

    # update the parameters
    for key in ('W1', 'b1', 'W2', 'b2'):
        network.params[key] -= learning_rate * grad[key]

    loss = network.loss(x_batch, t_batch)
    train_loss_list.append(loss)

    # the accuracy once per epoch
    if i % iter_per_epoch == 0:
        train_acc = network.accuracy(x_train, t_train)
        test_acc = network.accuracy(x_test, t_test)
        train_acc_list.append(train_acc)
        test_acc_list.append(test_acc)
        print("train acc, test acc | " + str(train_acc) + ", " + str(test_acc))

# draw the graphs
'''
markers = {'train': 'o', 'test': 's'}
x = np.arange(len(train_acc_list))
plt.plot(x, train_acc_list, label='train acc')
plt.plot(x, test_acc_list, label='test acc', linestyle='--')
plt.xlabel("epochs")
plt.ylabel("accuracy")
plt.ylim(0, 1.0)
plt.legend(loc='lower right')
plt.show()
'''
x = np.arange(len(train_loss_list))
plt.plot(x, train_loss_list, label='train lost')
plt.xlabel("iteration")
plt.ylabel("loss")
plt.ylim(0, 3)
plt.show()
