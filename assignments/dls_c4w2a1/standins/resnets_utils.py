"""Stand-in for the course's `resnets_utils`, which graders do not have.

One template generation of the Residual Networks notebook imports `BatchNormalization`
nowhere itself: it reaches the notebook through `from resnets_utils import *`, because
the course's helper imported the Keras layers at its top. This file exports the same
names (those imports, the libraries, the helper functions) so such a notebook's graded
functions find every name they use. It holds no data and reads none: the data helpers
say so if a cell ever calls them (the grader never runs data cells).
"""
import math
import os

import numpy as np
import tensorflow as tf
from tensorflow.keras.initializers import constant, glorot_uniform, identity, random_uniform
from tensorflow.keras.layers import (Activation, Add, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                                     Flatten, GlobalMaxPooling2D, Input, MaxPooling2D, ZeroPadding2D)
from tensorflow.keras.models import Model, load_model

_NO_DATA = "the course's data files are not available where this notebook is graded"


def load_dataset():
    raise FileNotFoundError(_NO_DATA)


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffled mini-batches of (X, Y) along the first axis, as the course's helper made."""
    m = X.shape[0]
    rng = np.random.RandomState(seed)
    order = rng.permutation(m)
    X, Y = X[order], Y[order]
    return [(X[k:k + mini_batch_size], Y[k:k + mini_batch_size]) for k in range(0, m, mini_batch_size)]


def convert_to_one_hot(Y, C):
    return np.eye(C)[np.reshape(Y, -1)].T


def forward_propagation_for_predict(X, parameters):
    raise NotImplementedError("not available where this notebook is graded")


def predict(X, parameters):
    raise NotImplementedError("not available where this notebook is graded")
