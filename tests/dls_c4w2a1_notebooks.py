"""Course-layout notebooks for dls_c4w2a1 (Residual Networks), in the variants real
students handed in (three signatures, and a template generation that takes
BatchNormalization from the course's helper module), plus the real mistakes they made.

Shared by `tests/test_dls_c4w2a1.py`; kept apart so the test module reads as what is
checked, not as several hundred lines of notebook text. The layout follows the course's:
no tags, helper modules (`resnets_utils`, `public_tests`, `test_utils`, `outputs`) and
data files that are not there, test cells that call the functions on NumPy arrays,
training and prediction cells. The graded code is written here, in the styles seen in
public notebooks (shortcut first in `Add()`, keyword and positional arguments, layer
names built from stage and block in the Keras 2 era variant).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _swap(text: str, old: str, new: str) -> str:
    """`str.replace` that fails loudly: a mistake that silently did not apply would make
    its test pass for the wrong reason."""
    if text.count(old) != 1:
        raise ValueError(f"expected exactly one {old!r} in the notebook text, found {text.count(old)}")
    return text.replace(old, new)


# ------------------------------------------------------------------ current variant (training=...)

CURRENT_IMPORTS = """\
import tensorflow as tf
import numpy as np
import scipy.misc
from tensorflow.keras.applications.resnet_v2 import ResNet50V2
from tensorflow.keras.preprocessing import image
from tensorflow.keras.applications.resnet_v2 import preprocess_input, decode_predictions
from tensorflow.keras import layers
from tensorflow.keras.layers import Input, Add, Dense, Activation, ZeroPadding2D, BatchNormalization, Flatten, Conv2D, AveragePooling2D, MaxPooling2D, GlobalMaxPooling2D
from tensorflow.keras.models import Model, load_model
from resnets_utils import *
from tensorflow.keras.initializers import random_uniform, glorot_uniform, constant, identity
from tensorflow.python.framework.ops import EagerTensor
from matplotlib.pyplot import imshow

from test_utils import summary, comparator
import public_tests

%matplotlib inline
"""

CURRENT_IDENTITY = """\
# UNQ_C1
# GRADED FUNCTION: identity_block

def identity_block(X, f, filters, training=True, initializer=random_uniform):
    \"\"\"
    Implementation of the identity block

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, specifying the shape of the middle CONV's window for the main path
    filters -- python list of integers, defining the number of filters in the CONV layers of the main path
    training -- True: Behave in training mode
                False: Behave in inference mode
    initializer -- to set up the initial weights of a layer. Equals to random uniform initializer

    Returns:
    X -- output of the identity block, tensor of shape (m, n_H, n_W, n_C)
    \"\"\"

    # Retrieve Filters
    F1, F2, F3 = filters

    # Save the input value. You'll need this later to add back to the main path.
    X_shortcut = X

    # First component of main path
    X = Conv2D(filters = F1, kernel_size = 1, strides = (1,1), padding = 'valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training) # Default axis
    X = Activation('relu')(X)

    ### START CODE HERE
    ## Second component of main path (≈3 lines)
    X = Conv2D(filters = F2, kernel_size = f, strides = (1,1), padding = 'same', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training)
    X = Activation('relu')(X)

    ## Third component of main path (≈2 lines)
    X = Conv2D(filters = F3, kernel_size = 1, strides = (1,1), padding = 'valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training)

    ## Final step: Add shortcut value to main path, and pass it through a RELU activation (≈2 lines)
    X = Add()([X_shortcut, X])
    X = Activation('relu')(X)
    ### END CODE HERE

    return X
"""

CURRENT_IDENTITY_TEST = """\
np.random.seed(1)
tf.random.set_seed(2)
X1 = np.ones((1, 4, 4, 3)) * -1
X2 = np.ones((1, 4, 4, 3)) * 1
X3 = np.ones((1, 4, 4, 3)) * 3

X = np.concatenate((X1, X2, X3), axis = 0).astype(np.float32)

A3 = identity_block(X, f=2, filters=[4, 4, 3],
                   initializer=lambda seed=0:constant(value=1),
                   training=False)
print('\\033[1mWith training=False\\033[0m\\n')
A3np = A3.numpy()
print(np.around(A3.numpy()[:,(0,-1),:,:].mean(axis = 3), 5))
resume = A3np[:,(0,-1),:,:].mean(axis = 3)
print(resume[1, 1, 0])

public_tests.identity_block_test(identity_block)
"""

CURRENT_CONVOLUTIONAL = """\
# UNQ_C2
# GRADED FUNCTION: convolutional_block

def convolutional_block(X, f, filters, s = 2, training=True, initializer=glorot_uniform):
    \"\"\"
    Implementation of the convolutional block

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, specifying the shape of the middle CONV's window for the main path
    filters -- python list of integers, defining the number of filters in the CONV layers of the main path
    s -- Integer, specifying the stride to be used
    training -- True: Behave in training mode
                False: Behave in inference mode
    initializer -- to set up the initial weights of a layer. Equals to Glorot uniform initializer,
                   also called Xavier uniform initializer.

    Returns:
    X -- output of the convolutional block, tensor of shape (m, n_H, n_W, n_C)
    \"\"\"

    # Retrieve Filters
    F1, F2, F3 = filters

    # Save the input value
    X_shortcut = X


    ##### MAIN PATH #####

    # First component of main path glorot_uniform(seed=0)
    X = Conv2D(filters = F1, kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)
    X = Activation('relu')(X)

    ### START CODE HERE

    ## Second component of main path (≈3 lines)
    X = Conv2D(filters = F2, kernel_size = f, strides = (1, 1), padding='same', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)
    X = Activation('relu')(X)

    ## Third component of main path (≈2 lines)
    X = Conv2D(filters = F3, kernel_size = 1, strides = (1, 1), padding='valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)

    ##### SHORTCUT PATH ##### (≈2 lines)
    X_shortcut = Conv2D(filters = F3, kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)

    ### END CODE HERE

    # Final step: Add shortcut value to main path (Use this order [X, X_shortcut]), and pass it through a RELU activation
    X = Add()([X_shortcut, X])
    X = Activation('relu')(X)

    return X
"""

CURRENT_CONVOLUTIONAL_TEST = """\
from outputs import convolutional_block_output1, convolutional_block_output2
np.random.seed(1)
#X = np.random.randn(3, 4, 4, 6).astype(np.float32)
X1 = np.ones((1, 4, 4, 3)) * -1
X2 = np.ones((1, 4, 4, 3)) * 1
X3 = np.ones((1, 4, 4, 3)) * 3

X = np.concatenate((X1, X2, X3), axis = 0).astype(np.float32)

A = convolutional_block(X, f = 2, filters = [2, 4, 6], training=False)

assert type(A) == EagerTensor, "Use only tensorflow and keras functions"
assert tuple(tf.shape(A).numpy()) == (3, 2, 2, 6), "Wrong shape."
assert np.allclose(A.numpy(), convolutional_block_output1), "Wrong values when training=False."
print(A[0])

B = convolutional_block(X, f = 2, filters = [2, 4, 6], training=True)
assert np.allclose(B.numpy(), convolutional_block_output2), "Wrong values when training=True."

print('\\033[92mAll tests passed!')
"""

CURRENT_RESNET = """\
# UNQ_C3
# GRADED FUNCTION: ResNet50

def ResNet50(input_shape = (64, 64, 3), classes = 6):
    \"\"\"
    Stage-wise implementation of the architecture of the popular ResNet50:
    CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2 -> CONVBLOCK -> IDBLOCK*3
    -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2 -> AVGPOOL -> FLATTEN -> DENSE

    Arguments:
    input_shape -- shape of the images of the dataset
    classes -- integer, number of classes

    Returns:
    model -- a Model() instance in Keras
    \"\"\"

    # Define the input as a tensor with shape input_shape
    X_input = Input(input_shape)


    # Zero-Padding
    X = ZeroPadding2D((3, 3))(X_input)

    # Stage 1
    X = Conv2D(64, (7, 7), strides = (2, 2), kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3)(X)
    X = Activation('relu')(X)
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)

    # Stage 2
    X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 1)
    X = identity_block(X, 3, [64, 64, 256])
    X = identity_block(X, 3, [64, 64, 256])

    ### START CODE HERE

    ## Stage 3 (≈4 lines)
    X = convolutional_block(X, f = 3, filters = [128, 128, 512], s = 2)
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])

    ## Stage 4 (≈6 lines)
    X = convolutional_block(X, f = 3, filters = [256, 256, 1024], s = 2)
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])

    ## Stage 5 (≈3 lines)
    X = convolutional_block(X, f = 3, filters = [512, 512, 2048], s = 2)
    X = identity_block(X, 3, [512, 512, 2048])
    X = identity_block(X, 3, [512, 512, 2048])

    ## AVGPOOL (≈1 line). Use "X = AveragePooling2D()(X)"
    X = AveragePooling2D((2, 2))(X)

    ### END CODE HERE

    # output layer
    X = Flatten()(X)
    X = Dense(classes, activation='softmax', kernel_initializer = glorot_uniform(seed=0))(X)


    # Create model
    model = Model(inputs = X_input, outputs = X)

    return model
"""

CURRENT_RESNET_SUMMARY = """\
tf.keras.backend.set_learning_phase(True)

model = ResNet50(input_shape = (64, 64, 3), classes = 6)
print(model.summary())
"""

RESNET_COMPARE = """\
from outputs import ResNet50_summary

model = ResNet50(input_shape = (64, 64, 3), classes = 6)

comparator(summary(model), ResNet50_summary)
"""

TRAIN = """\
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""

LOAD_DATA = """\
X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_dataset()

# Normalize image vectors
X_train = X_train_orig / 255.
X_test = X_test_orig / 255.

# Convert training and test labels to one hot matrices
Y_train = convert_to_one_hot(Y_train_orig, 6).T
Y_test = convert_to_one_hot(Y_test_orig, 6).T

print ("number of training examples = " + str(X_train.shape[0]))
print ("number of test examples = " + str(X_test.shape[0]))
print ("X_train shape: " + str(X_train.shape))
"""

FIT = """\
model.fit(X_train, Y_train, epochs = 10, batch_size = 32)
"""

EVALUATE = """\
preds = model.evaluate(X_test, Y_test)
print ("Loss = " + str(preds[0]))
print ("Test Accuracy = " + str(preds[1]))
"""

PRETRAINED = """\
pre_trained_model = tf.keras.models.load_model('resnet50.h5')
preds = pre_trained_model.evaluate(X_test, Y_test)
print ("Loss = " + str(preds[0]))
print ("Test Accuracy = " + str(preds[1]))
"""

MY_IMAGE = """\
img_path = 'images/my_image.jpg'
img = image.load_img(img_path, target_size=(64, 64))
x = image.img_to_array(img)
x = np.expand_dims(x, axis=0)
x = x/255.0
print('Input image shape:', x.shape)
imshow(img)
prediction = pre_trained_model.predict(x)
print("Class prediction vector [p(0), p(1), p(2), p(3), p(4), p(5)] = ", prediction)
print("Class:", np.argmax(prediction))
"""

SUMMARY = """\
pre_trained_model.summary()
"""

# ------------------------------------------------------------------ 2021 variant (no training argument)

# Valid oddities from real notebooks ride along: a maths-italic `𝑓` as a parameter name (Python
# reads it as `f`), BatchNormalization's axis by position, strides and padding by position,
# 'Valid' capitalized.
V2021_IDENTITY = (CURRENT_IDENTITY
                  .replace("def identity_block(X, f, filters, training=True, initializer=random_uniform):",
                           "def identity_block(X, \U0001d453, filters, initializer=random_uniform):")
                  .replace("    training -- True: Behave in training mode\n"
                           "                False: Behave in inference mode\n", "")
                  .replace("(X, training = training)", "(X)"))

V2021_CONVOLUTIONAL = (CURRENT_CONVOLUTIONAL
                       .replace("def convolutional_block(X, f, filters, s = 2, training=True, initializer=glorot_uniform):",
                                "def convolutional_block(X, f, filters, s = 2, initializer=glorot_uniform):")
                       .replace("    training -- True: Behave in training mode\n"
                                "                False: Behave in inference mode\n", "")
                       .replace("(X, training=training)", "(X)")
                       .replace("(X_shortcut, training=training)", "(X_shortcut)"))
V2021_CONVOLUTIONAL = _swap(
    V2021_CONVOLUTIONAL,
    "    X = Conv2D(filters = F1, kernel_size = 1, strides = (s, s), padding='valid', "
    "kernel_initializer = initializer(seed=0))(X)\n    X = BatchNormalization(axis = 3)(X)\n",
    "    X = Conv2D(F1, (1, 1), (s, s), 'Valid', kernel_initializer = initializer(seed=0))(X)\n"
    "    X = BatchNormalization(3)(X)\n")

V2021_IDENTITY_TEST = """\
tf.keras.backend.set_learning_phase(False)

np.random.seed(1)
X = np.random.randn(3, 4, 4, 6).astype(np.float32)
A = identity_block(X, f=2, filters=[4, 4, 6], initializer=lambda seed=0:constant(value=1))
print(np.around(A.numpy()[:,(0,-1),:,:].mean(axis = 3), 5))

public_tests.identity_block_test(identity_block)
"""

V2021_CONVOLUTIONAL_TEST = """\
tf.keras.backend.set_learning_phase(False)
from outputs import convolutional_block_output1
np.random.seed(1)
X = np.random.randn(3, 4, 4, 6).astype(np.float32)
A = convolutional_block(X, f = 2, filters = [2, 4, 6])
assert np.allclose(A.numpy(), convolutional_block_output1), "Wrong values."
print('\\033[92mAll tests passed!')
"""

# ------------------------------------------------------------------ Keras 2 era variant (stage, block)

KERAS2_IMPORTS = """\
import numpy as np
from keras import layers
from keras.layers import Input, Add, Dense, Activation, ZeroPadding2D, BatchNormalization, Flatten, Conv2D, AveragePooling2D, MaxPooling2D, GlobalMaxPooling2D
from keras.models import Model, load_model
from keras.preprocessing import image
from keras.utils import layer_utils
from keras.utils.data_utils import get_file
from keras.applications.imagenet_utils import preprocess_input
import pydot
from IPython.display import SVG
from keras.utils.vis_utils import model_to_dot
from keras.utils import plot_model
from resnets_utils import *
from keras.initializers import glorot_uniform
import scipy.misc
from matplotlib.pyplot import imshow
%matplotlib inline

import keras.backend as K
K.set_image_data_format('channels_last')
K.set_learning_phase(1)
"""

KERAS2_IDENTITY = """\
# GRADED FUNCTION: identity_block

def identity_block(X, f, filters, stage, block):
    \"\"\"
    Implementation of the identity block as defined in Figure 3

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, specifying the shape of the middle CONV's window for the main path
    filters -- python list of integers, defining the number of filters in the CONV layers of the main path
    stage -- integer, used to name the layers, depending on their position in the network
    block -- string/character, used to name the layers, depending on their position in the network

    Returns:
    X -- output of the identity block, tensor of shape (n_H, n_W, n_C)
    \"\"\"

    # defining name basis
    conv_name_base = 'res' + str(stage) + block + '_branch'
    bn_name_base = 'bn' + str(stage) + block + '_branch'

    # Retrieve Filters
    F1, F2, F3 = filters

    # Save the input value. You'll need this later to add back to the main path.
    X_shortcut = X

    # First component of main path
    X = Conv2D(filters = F1, kernel_size = (1, 1), strides = (1,1), padding = 'valid', name = conv_name_base + '2a', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2a')(X)
    X = Activation('relu')(X)

    ### START CODE HERE ###

    # Second component of main path (≈3 lines)
    X = Conv2D(filters = F2, kernel_size = (f, f), strides = (1,1), padding = 'same', name = conv_name_base + '2b', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2b')(X)
    X = Activation('relu')(X)

    # Third component of main path (≈2 lines)
    X = Conv2D(filters = F3, kernel_size = (1, 1), strides = (1,1), padding = 'valid', name = conv_name_base + '2c', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2c')(X)

    # Final step: Add shortcut value to main path, and pass it through a RELU activation (≈2 lines)
    X = layers.add([X, X_shortcut])
    X = Activation('relu')(X)

    ### END CODE HERE ###

    return X
"""

KERAS2_IDENTITY_TEST = """\
tf.reset_default_graph()

with tf.Session() as test:
    np.random.seed(1)
    A_prev = tf.placeholder("float", [3, 4, 4, 6])
    X = np.random.randn(3, 4, 4, 6)
    A = identity_block(A_prev, f = 2, filters = [2, 4, 6], stage = 1, block = 'a')
    test.run(tf.global_variables_initializer())
    out = test.run([A], feed_dict={A_prev: X, K.learning_phase(): 0})
    print("out = " + str(out[0][1][1][0]))
"""

KERAS2_CONVOLUTIONAL = """\
# GRADED FUNCTION: convolutional_block

def convolutional_block(X, f, filters, stage, block, s = 2):
    \"\"\"
    Implementation of the convolutional block as defined in Figure 4

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, specifying the shape of the middle CONV's window for the main path
    filters -- python list of integers, defining the number of filters in the CONV layers of the main path
    stage -- integer, used to name the layers, depending on their position in the network
    block -- string/character, used to name the layers, depending on their position in the network
    s -- Integer, specifying the stride to be used

    Returns:
    X -- output of the convolutional block, tensor of shape (n_H, n_W, n_C)
    \"\"\"

    # defining name basis
    conv_name_base = 'res' + str(stage) + block + '_branch'
    bn_name_base = 'bn' + str(stage) + block + '_branch'

    # Retrieve Filters
    F1, F2, F3 = filters

    # Save the input value
    X_shortcut = X


    ##### MAIN PATH #####
    # First component of main path
    X = Conv2D(F1, (1, 1), strides = (s,s), name = conv_name_base + '2a', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2a')(X)
    X = Activation('relu')(X)

    ### START CODE HERE ###

    # Second component of main path (≈3 lines)
    X = Conv2D(F2, (f, f), strides = (1,1), padding = 'same', name = conv_name_base + '2b', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2b')(X)
    X = Activation('relu')(X)

    # Third component of main path (≈2 lines)
    X = Conv2D(F3, (1, 1), strides = (1,1), padding = 'valid', name = conv_name_base + '2c', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = bn_name_base + '2c')(X)

    ##### SHORTCUT PATH #### (≈2 lines)
    X_shortcut = Conv2D(F3, (1, 1), strides = (s,s), padding = 'valid', name = conv_name_base + '1', kernel_initializer = glorot_uniform(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis = 3, name = bn_name_base + '1')(X_shortcut)

    # Final step: Add shortcut value to main path, and pass it through a RELU activation (≈2 lines)
    X = Add()([X, X_shortcut])
    X = Activation('relu')(X)

    ### END CODE HERE ###

    return X
"""

KERAS2_RESNET = """\
# GRADED FUNCTION: ResNet50

def ResNet50(input_shape = (64, 64, 3), classes = 6):
    \"\"\"
    Implementation of the popular ResNet50 the following architecture:
    CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2 -> CONVBLOCK -> IDBLOCK*3
    -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2 -> AVGPOOL -> TOPLAYER

    Arguments:
    input_shape -- shape of the images of the dataset
    classes -- integer, number of classes

    Returns:
    model -- a Model() instance in Keras
    \"\"\"

    # Define the input as a tensor with shape input_shape
    X_input = Input(input_shape)


    # Zero-Padding
    X = ZeroPadding2D((3, 3))(X_input)

    # Stage 1
    X = Conv2D(64, (7, 7), strides = (2, 2), name = 'conv1', kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3, name = 'bn_conv1')(X)
    X = Activation('relu')(X)
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)

    # Stage 2
    X = convolutional_block(X, f = 3, filters = [64, 64, 256], stage = 2, block='a', s = 1)
    X = identity_block(X, 3, [64, 64, 256], stage=2, block='b')
    X = identity_block(X, 3, [64, 64, 256], stage=2, block='c')

    ### START CODE HERE ###

    # Stage 3 (≈4 lines)
    X = convolutional_block(X, f = 3, filters = [128, 128, 512], stage = 3, block='a', s = 2)
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='b')
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='c')
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='d')

    # Stage 4 (≈6 lines)
    X = convolutional_block(X, f = 3, filters = [256, 256, 1024], stage = 4, block='a', s = 2)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='b')
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='c')
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='d')
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='e')
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='f')

    # Stage 5 (≈3 lines)
    X = convolutional_block(X, f = 3, filters = [512, 512, 2048], stage = 5, block='a', s = 2)
    X = identity_block(X, 3, [512, 512, 2048], stage=5, block='b')
    X = identity_block(X, 3, [512, 512, 2048], stage=5, block='c')

    # AVGPOOL (≈1 line). Use "X = AveragePooling2D(...)(X)"
    X = AveragePooling2D((2,2), name="avg_pool")(X)

    ### END CODE HERE ###

    # output layer
    X = Flatten()(X)
    X = Dense(classes, activation='softmax', name='fc' + str(classes), kernel_initializer = glorot_uniform(seed=0))(X)


    # Create model
    model = Model(inputs = X_input, outputs = X, name='ResNet50')

    return model
"""

KERAS2_RESNET_SUMMARY = """\
model = ResNet50(input_shape = (64, 64, 3), classes = 6)
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""

KERAS2_PLOT = """\
plot_model(model, to_file='model.png')
SVG(model_to_dot(model).create(prog='dot', format='svg'))
"""

# ------------------------------------------------------------------ helper-names generation

# One template generation imports BatchNormalization nowhere: it reaches the notebook through
# `from resnets_utils import *` (the course's helper imported the Keras layers). Its ResNet50
# follows the template's own hint, `AveragePooling2D()` bare, which Keras 2 defaulted to 2x2.
HELPER_NAMES_IMPORTS = _swap(CURRENT_IMPORTS, "ZeroPadding2D, BatchNormalization, Flatten", "ZeroPadding2D, Flatten")
HELPER_NAMES_RESNET = _swap(CURRENT_RESNET, "X = AveragePooling2D((2, 2))(X)", "X = AveragePooling2D()(X)")

# ------------------------------------------------------------------ the real mistakes


# The shortcut's BatchNormalization reads the main path (X) instead of the shortcut's
# Conv2D: that Conv2D is then computed and never used.
SHORTCUT_ON_MAIN_PATH = _swap(
    CURRENT_CONVOLUTIONAL,
    "X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)",
    "X_shortcut = BatchNormalization(axis = 3)(X, training=training)")

# The shortcut is added after the block's final ReLU.
ADD_AFTER_RELU = _swap(
    CURRENT_IDENTITY,
    "    X = Add()([X_shortcut, X])\n    X = Activation('relu')(X)\n",
    "    X = Activation('relu')(X)\n    X = Add()([X_shortcut, X])\n")

# Stage 2 downsamples: max-pooling has just halved the feature map.
STAGE2_STRIDE_2 = _swap(
    CURRENT_RESNET,
    "X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 1)",
    "X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 2)")

# BatchNormalization told to use batch statistics always, whatever mode the block is in.
BN_TRAINING_TRUE = (CURRENT_IDENTITY
                    .replace("(X, training = training)", "(X, training = True)"))

# The shortcut's Conv2D without its BatchNormalization.
NO_SHORTCUT_BN = _swap(
    CURRENT_CONVOLUTIONAL,
    "    X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)\n", "")

# ------------------------------------------------------------------ notebooks

VARIANTS = ("current", "2021", "keras2", "helper_names")


def course_notebook(variant: str = "current", *, identity: str | None = None,
                    convolutional: str | None = None, resnet: str | None = None) -> nbformat.NotebookNode:
    """The course's layout, tags absent, around the given graded functions (each defaults
    to the variant's correct code)."""
    if variant == "current":
        imports, ident, ident_test, conv, conv_test, res, res_summary = (
            CURRENT_IMPORTS, CURRENT_IDENTITY, CURRENT_IDENTITY_TEST, CURRENT_CONVOLUTIONAL,
            CURRENT_CONVOLUTIONAL_TEST, CURRENT_RESNET, CURRENT_RESNET_SUMMARY)
    elif variant == "2021":
        imports, ident, ident_test, conv, conv_test, res, res_summary = (
            CURRENT_IMPORTS, V2021_IDENTITY, V2021_IDENTITY_TEST, V2021_CONVOLUTIONAL,
            V2021_CONVOLUTIONAL_TEST, CURRENT_RESNET, CURRENT_RESNET_SUMMARY)
    elif variant == "helper_names":
        imports, ident, ident_test, conv, conv_test, res, res_summary = (
            HELPER_NAMES_IMPORTS, CURRENT_IDENTITY, CURRENT_IDENTITY_TEST, CURRENT_CONVOLUTIONAL,
            CURRENT_CONVOLUTIONAL_TEST, HELPER_NAMES_RESNET, CURRENT_RESNET_SUMMARY)
    elif variant == "keras2":
        imports, ident, ident_test, conv, conv_test, res, res_summary = (
            KERAS2_IMPORTS, KERAS2_IDENTITY, KERAS2_IDENTITY_TEST, KERAS2_CONVOLUTIONAL,
            "", KERAS2_RESNET, KERAS2_RESNET_SUMMARY)
    else:
        raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")
    md = new_markdown_cell
    cells = [
        md("# Residual Networks\n\nWelcome to the first assignment of this week!"),
        md("## 1 - Packages"),
        new_code_cell(imports),
        md("## 2 - The Problem of Very Deep Neural Networks"),
        md("## 3 - Building a Residual Network\n### 3.1 - The Identity Block\n### Exercise 1 - identity_block"),
        new_code_cell(identity or ident),
        new_code_cell(ident_test),
        md("### 3.2 - The Convolutional Block\n### Exercise 2 - convolutional_block"),
        new_code_cell(convolutional or conv),
    ]
    if conv_test:
        cells.append(new_code_cell(conv_test))
    cells += [
        md("## 4 - Building Your First ResNet Model (50 layers)\n### Exercise 3 - ResNet50"),
        new_code_cell(resnet or res),
        new_code_cell(res_summary),
    ]
    if variant != "keras2":
        cells.append(new_code_cell(RESNET_COMPARE))
        cells.append(new_code_cell(TRAIN))
    else:
        cells.append(new_code_cell(KERAS2_PLOT))
    cells += [
        md("As seen in the Keras Tutorial Notebook, prior to training a model, you need to configure the "
           "learning process by compiling the model."),
        new_code_cell(LOAD_DATA),
        new_code_cell(FIT),
        new_code_cell(EVALUATE),
        new_code_cell(PRETRAINED),
        md("## 5 - Test on Your Own Image (Optional/Ungraded)"),
        new_code_cell(MY_IMAGE),
        new_code_cell(SUMMARY),
    ]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def write(folder: Path, nb: nbformat.NotebookNode, name: str) -> Path:
    path = Path(folder) / name
    nbformat.write(nb, str(path))
    return path
