# ---
# jupyter:
#   grader:
#     assignment: conv_bn
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Normalize the inputs, then normalize inside: BatchNormalization after Conv2D
#
# Almost every course on convolutional networks gets this question: *why do models put a
# `BatchNormalization` layer straight after each `Conv2D`? And if the network normalizes
# inside, do I still need to normalize the input images?*
#
# Short answer: do both. They are one idea, used in two places. In this notebook you
# implement it in four exercises, then run a small experiment that shows what each half
# does:
#
# 1. `standardize`: per-channel standardization of images, using training statistics only.
# 2. `batchnorm_forward`: what a BatchNormalization layer computes in training mode, in NumPy.
# 3. `happyModel`: a Sequential model built as Conv → BatchNorm → ReLU.
# 4. `convolutional_model`: the same pattern twice, written with the functional API.
#
# **How to work.** Replace `# YOUR CODE HERE` and `raise NotImplementedError()` with your
# code. Each exercise has a `check(...)` cell after it. That cell grades the code you last
# **ran** in this notebook (run your edited cell first; no need to save), checks only that
# exercise with the visible tests, and tells you what to fix. Hidden tests count too.
# The other code cells were written for you, and edits to them are reported when you
# submit. If you want to try something, add a new cell.

# %%
try:  # start the grader in the background now, so that your first check() is quick
    from grader.kit.selfcheck import warm_up
    warm_up("conv_bn")
except ImportError:  # the notebook runs without the grader too
    pass

import time

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow.keras import layers as tfl

from faces import CLASS_NAMES, load_faces

# %% [markdown]
# ## 1. The data
#
# The images are 64×64 RGB cartoon faces, either smiling (label 1) or frowning (label 0).
# They are drawn by `faces.py`, which sits next to this notebook. Think of them as photos
# from many different cameras: each image has its own brightness, contrast and noise. The
# whole set also has a warm colour cast, so red pixels are bright and widely spread while
# blue pixels are dark and packed close together.

# %%
X_train, y_train, X_test, y_test = load_faces()
print("X_train:", X_train.shape, X_train.dtype, "  X_test:", X_test.shape)
print("share of smiling faces in the training set:", y_train.mean())
for c, name in enumerate(("red", "green", "blue")):
    print(f"{name:>5} channel: mean {X_train[..., c].mean():6.1f}   std {X_train[..., c].std():5.1f}")

fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for ax, image, label in zip(axes.flat, X_train, y_train):
    ax.imshow(image)
    ax.set_title(CLASS_NAMES[label], fontsize=9)
    ax.axis("off")
fig.suptitle("Training images: same two classes, very different pixel values")
plt.show()

# %% [markdown]
# ## 2. Standardize the inputs
#
# Gradient descent moves every weight using the same learning rate. That works well when
# the loss changes at about the same rate in every direction. Inputs with large or unequal
# scales break this.
#
# Take one unit that computes `w1 * x1 + w2 * x2 + b`. The gradient with respect to `w1`
# is proportional to `x1`. Suppose `x1` is a red pixel, about 160 ± 45, and `x2` is a blue
# pixel, about 67 ± 20. Then the loss surface in `(w1, w2, b)` is a long, narrow valley:
# steep in some directions and nearly flat in others. A learning rate small enough to avoid
# overshooting in the steep direction barely moves along the flat one. The inputs are also
# all positive, so for a single example every weight's gradient has the same sign. The
# weights must all rise together or all fall together, and the path zig-zags.
#
# Standardizing each channel means subtracting its mean and dividing by its standard
# deviation. This centres the inputs at 0 and puts every channel on the same scale, which
# makes the valley closer to round. Then one learning rate suits every direction: the loss
# surface is *better conditioned*.
#
# Two details matter:
#
# * **One mean and one standard deviation per channel.** A convolution slides the same
#   filter over every position, so all pixels of a channel play the same role. Pool the
#   statistics over images, rows and columns, i.e. over every axis except the last.
# * **Training statistics only.** The test set stands in for images that arrive after
#   training. Measure the mean and standard deviation on `X_train` and apply *those same
#   numbers* to `X_test`. Using the test set's own statistics leaks information about it,
#   and it also transforms the test images differently from the images the model learned on.
#
# ### Exercise 1: `standardize(X_train, X_test)`
#
# Return `(X_train_std, X_test_std)` as float32 arrays. In both arrays, each channel `c`
# becomes `(X[..., c] - mean_c) / std_c`, where `mean_c` and `std_c` are the mean and the
# population standard deviation (NumPy's default, `ddof=0`) of channel `c` **in `X_train`**.
# Do not modify the arrays you were given.
#
# *Hint:* `axis=tuple(range(X_train.ndim - 1))` reduces over every axis except the last.
# The resulting shape-`(3,)` arrays broadcast against `(N, 64, 64, 3)`.

# %% tags=["standardize"]
def standardize(X_train, X_test):
    """Standardize both sets per channel, with statistics measured on X_train only.

    Arguments:
    X_train -- training images, shape (N, H, W, C), any numeric dtype
    X_test -- test images, shape (M, H, W, C)

    Returns:
    (X_train_std, X_test_std) -- float32 arrays with the input shapes
    """
    ### BEGIN SOLUTION
    train = np.asarray(X_train, dtype=np.float64)
    test = np.asarray(X_test, dtype=np.float64)
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axis=axes)
    std = train.std(axis=axes)
    X_train_std = ((train - mean) / std).astype(np.float32)
    X_test_std = ((test - mean) / std).astype(np.float32)
    ### END SOLUTION
    return X_train_std, X_test_std


# %%
from grader import check
check("standardize")

# %% [markdown]
# The histograms below show each channel before and after your `standardize`. Before, the
# three channels sit in different places and have different widths. After, they overlap,
# centred at 0 with a spread of 1. Their *shapes* stay the same, because standardization
# only shifts and rescales. The test set's means come out close to 0 but not exactly 0.
# That is correct: the test set was transformed with the training set's numbers.

# %%
X_train_std, X_test_std = standardize(X_train, X_test)

fig, (before, after) = plt.subplots(1, 2, figsize=(11, 3.5))
for c, (name, colour) in enumerate(zip(("red", "green", "blue"), ("tab:red", "tab:green", "tab:blue"))):
    before.hist(X_train[:100, ..., c].ravel(), bins=64, range=(0, 255), histtype="step", color=colour, label=name)
    after.hist(X_train_std[:100, ..., c].ravel(), bins=32, range=(-4, 4), histtype="step", color=colour, label=name)
before.set(title="raw pixels", xlabel="value", ylabel="count")
after.set(title="standardized with training statistics", xlabel="value")
before.legend()
plt.show()

print("test set after standardize, per-channel mean:", X_test_std.mean(axis=(0, 1, 2)).round(3),
      " std:", X_test_std.std(axis=(0, 1, 2)).round(3))

# %% [markdown]
# ## 3. Batch normalization: the same idea, inside the network
#
# The second layer of a network never sees your standardized images. It sees the first
# layer's output, whose mean and scale depend on the first layer's weights, and those
# change at every update. So the second layer keeps chasing a moving target, and the loss
# surface for its own weights can be as badly shaped as one fed with raw pixels.
#
# A BatchNormalization layer standardizes its input channel by channel, just as in
# exercise 1, but with the statistics of the current mini-batch. For each channel $c$,
# with the mean and variance taken over the batch and over all positions:
#
# $$\mu_c = \operatorname{mean}(x_{\cdot,c}),\qquad \sigma_c^2 = \operatorname{var}(x_{\cdot,c}),\qquad
# \hat x = \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \varepsilon}},\qquad y = \gamma_c\,\hat x + \beta_c$$
#
# * $\varepsilon$ (Keras: `epsilon=1e-3`) keeps the division safe when a channel is almost
#   constant. It goes **inside** the square root.
# * $\gamma_c$ and $\beta_c$ are learned. They let the network give the next layer any
#   mean and scale it wants, including undoing the normalization. BN does not take that
#   freedom away. It removes the drift: the scale now comes from two parameters that
#   gradient descent adjusts directly, not from the combined effect of every earlier weight.
# * **At test time** there may be only one image, and a prediction should not depend on
#   which other images share its batch. During training the layer therefore keeps moving
#   averages of $\mu$ and $\sigma^2$ (`moving_mean`, `moving_variance`). It uses them
#   instead when called with `training=False`, which is what `model.predict` and
#   `model.evaluate` do.
#
# ### Exercise 2: `batchnorm_forward(x, gamma, beta, eps=1e-3)`
#
# Implement the training-mode forward pass in NumPy. `x` has its channels last and any
# number of leading axes (for example `(N, H, W, C)`). `gamma` and `beta` have shape
# `(C,)`. Compute the mean and the (population) variance over every axis except the last,
# then return `gamma * x_hat + beta`, with the same shape as `x`.

# %% tags=["batchnorm_forward"]
def batchnorm_forward(x, gamma, beta, eps=1e-3):
    """Batch normalization in training mode, channels last.

    Arguments:
    x -- array of shape (..., C)
    gamma, beta -- arrays of shape (C,), the learned scale and shift
    eps -- added to the variance before the square root

    Returns:
    out -- array with the shape of x
    """
    ### BEGIN SOLUTION
    axes = tuple(range(x.ndim - 1))
    mu = x.mean(axis=axes)
    var = x.var(axis=axes)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma * x_hat + beta
    ### END SOLUTION
    return out


# %%
from grader import check
check("batchnorm_forward")

# %% [markdown]
# Compare your function with Keras' own layer, in both modes:

# %%
rng = np.random.default_rng(1)
x = rng.normal(3.0, 2.0, size=(8, 5, 5, 4)).astype("float32")
gamma = rng.uniform(0.5, 1.5, size=4).astype("float32")
beta = rng.normal(size=4).astype("float32")

bn_layer = tfl.BatchNormalization(axis=3, epsilon=1e-3)
bn_layer.build(x.shape)
bn_layer.gamma.assign(gamma)
bn_layer.beta.assign(beta)

yours = batchnorm_forward(x, gamma, beta)
keras_training = bn_layer(x, training=True).numpy()
keras_inference = bn_layer(x, training=False).numpy()
print(f"largest |yours - Keras, training=True | = {np.abs(yours - keras_training).max():.1e}")
print(f"largest |yours - Keras, training=False| = {np.abs(yours - keras_inference).max():.2f}")
print("moving_mean after one training call:", bn_layer.moving_mean.numpy().round(3))

# %% [markdown]
# In training mode your function and Keras agree up to float32 rounding. In inference mode
# Keras uses its moving averages instead. These start at mean 0 and variance 1 and move
# only 1% of the way towards each batch's statistics per training step (`momentum=0.99`).
# So the untrained layer barely changes `x`, and its output differs from yours by whole
# units. This is why a freshly built model gives different answers in the two modes.
#
# ## 4. Where it goes: Conv2D → BatchNormalization → ReLU
#
# The output of a `Conv2D` is simply the input of the next layer, so normalizing it is
# input standardization again, applied inside the network. Well-known architectures
# (ResNet, for example) place it between the convolution and the nonlinearity:
#
# `Conv2D → BatchNormalization → ReLU`
#
# Why before the ReLU and not after? ReLU sets every negative value to zero. With BN in
# front, each channel's values arrive centred on $\beta_c$ (0 at the start), so the ReLU
# keeps about half of them, and $\gamma_c, \beta_c$ learn where the cut should fall for
# that channel. Without BN, a channel whose convolution outputs happen to be mostly negative
# is zeroed almost everywhere and gets almost no gradient (a "dead" channel), while a
# channel whose outputs are mostly positive passes everything through and behaves as if it
# were linear. Placed after the ReLU, BN would normalize values whose negative half is
# already gone.
#
# A side effect: the convolution's bias becomes redundant, because BN subtracts the mean and
# $\beta$ adds back a learned shift. Many implementations therefore write
# `Conv2D(..., use_bias=False)`. We keep the default here so the layer lists stay simple.
#
# In Keras, `BatchNormalization(axis=3)` normalizes each slice along axis 3, which is the
# channel axis of `(batch, height, width, channels)` images. (The default, `axis=-1`, is
# the same axis here.)
#
# ### Exercise 3: `happyModel()`
#
# Return a `tf.keras.Sequential` model with exactly these layers, in this order:
#
# 1. `tf.keras.Input(shape=(64, 64, 3))`
# 2. `ZeroPadding2D(padding=3)`
# 3. `Conv2D(32, 7, strides=1)`
# 4. `BatchNormalization(axis=3)`
# 5. `ReLU()`
# 6. `MaxPooling2D()` (the default 2×2 pool)
# 7. `Flatten()`
# 8. `Dense(1, activation="sigmoid")`
#
# The layers are available as `tfl.ZeroPadding2D`, `tfl.Conv2D` and so on.

# %% tags=["happyModel"]
def happyModel():
    """Binary classifier for 64x64 RGB faces: one Conv -> BN -> ReLU block.

    Returns:
    model -- a tf.keras.Sequential model (not compiled)
    """
    ### BEGIN SOLUTION
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(64, 64, 3)),
        tfl.ZeroPadding2D(padding=3),
        tfl.Conv2D(32, 7, strides=1),
        tfl.BatchNormalization(axis=3),
        tfl.ReLU(),
        tfl.MaxPooling2D(),
        tfl.Flatten(),
        tfl.Dense(1, activation="sigmoid"),
    ])
    ### END SOLUTION
    return model


# %%
from grader import check
check("happyModel")

# %%
happyModel().summary()

# %% [markdown]
# ### Exercise 4: `convolutional_model(input_shape)`
#
# Now build the same pattern twice with the **functional API**. Start from
# `inputs = tf.keras.Input(shape=input_shape)`, call each layer on the previous layer's
# output (`x = tfl.Conv2D(...)(inputs)`, then `x = tfl.BatchNormalization(...)(x)`, and so
# on), and finish with `tf.keras.Model(inputs=inputs, outputs=outputs)`. The layers:
#
# 1. `Conv2D(8, 4, padding="same")`
# 2. `BatchNormalization(axis=3)`
# 3. `ReLU()`
# 4. `MaxPooling2D(pool_size=8, strides=8, padding="same")`
# 5. `Conv2D(16, 2, padding="same")`
# 6. `BatchNormalization(axis=3)`
# 7. `ReLU()`
# 8. `MaxPooling2D(pool_size=4, strides=4, padding="same")`
# 9. `Flatten()`
# 10. `Dense(6, activation="softmax")`

# %% tags=["convolutional_model"]
def convolutional_model(input_shape):
    """Six-class classifier: two Conv -> BN -> ReLU -> MaxPool blocks, functional API.

    Arguments:
    input_shape -- shape of one image, e.g. (64, 64, 3)

    Returns:
    model -- a tf.keras.Model (not compiled)
    """
    ### BEGIN SOLUTION
    inputs = tf.keras.Input(shape=input_shape)
    x = tfl.Conv2D(8, 4, padding="same")(inputs)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=8, strides=8, padding="same")(x)
    x = tfl.Conv2D(16, 2, padding="same")(x)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=4, strides=4, padding="same")(x)
    x = tfl.Flatten()(x)
    outputs = tfl.Dense(6, activation="softmax")(x)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    ### END SOLUTION
    return model


# %%
from grader import check
check("convolutional_model")

# %%
convolutional_model((64, 64, 3)).summary()

# %% [markdown]
# ## 5. Experiment: which normalization matters, and does doing both hurt?
#
# We train one small network (two Conv → [BN] → ReLU → MaxPool blocks, then a single
# sigmoid unit) four times for 10 epochs, on either raw pixels or standardized ones, and
# either with or without BatchNormalization. Every run starts from the same seed, so only
# those two switches differ. The optimizer is plain SGD with momentum. Adaptive optimizers
# such as Adam rescale each weight's step, which would partly hide the effect of input
# scale that we want to see here. This takes about half a minute on a laptop CPU.

# %%
def small_net(batchnorm):
    layers = [tf.keras.Input(shape=(64, 64, 3))]
    for filters in (8, 16):
        layers.append(tfl.Conv2D(filters, 3, padding="same"))
        if batchnorm:
            layers.append(tfl.BatchNormalization(axis=3))
        layers += [tfl.ReLU(), tfl.MaxPooling2D(4)]
    layers += [tfl.Flatten(), tfl.Dense(1, activation="sigmoid")]
    return tf.keras.Sequential(layers)


X_train_std, X_test_std = standardize(X_train, X_test)
inputs = {
    "raw pixels": (X_train.astype("float32"), X_test.astype("float32")),
    "standardized": (X_train_std, X_test_std),
}
histories = {}
start = time.perf_counter()
for batchnorm in (False, True):
    for input_name, (train_images, test_images) in inputs.items():
        tf.keras.utils.set_random_seed(0)  # same initial weights and batch order every run
        model = small_net(batchnorm)
        model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                      loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(train_images, y_train, epochs=10, batch_size=32,
                            validation_data=(test_images, y_test), verbose=0)
        histories[(batchnorm, input_name)] = history.history
print(f"4 runs took {time.perf_counter() - start:.0f} s\n")

print(f"{'BatchNorm':<11}{'inputs':<14}{'loss, epoch 1':>14}{'loss, epoch 10':>16}{'test accuracy':>15}")
for (batchnorm, input_name), h in histories.items():
    print(f"{'yes' if batchnorm else 'no':<11}{input_name:<14}"
          f"{h['loss'][0]:>14.3f}{h['loss'][-1]:>16.4f}{h['val_accuracy'][-1]:>15.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, batchnorm in zip(axes, (False, True)):
    for input_name, style in (("raw pixels", "--o"), ("standardized", "-o")):
        loss = histories[(batchnorm, input_name)]["loss"]
        ax.plot(range(1, len(loss) + 1), loss, style, label=input_name)
    ax.axhline(np.log(2), color="grey", lw=0.8, ls=":", label="ln 2: always answering 0.5")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("with BatchNormalization" if batchnorm else "without BatchNormalization")
axes[0].set_ylabel("training loss (log scale)")
axes[0].legend()
plt.show()

# %% [markdown]
# **What the curves show.** Look first at raw pixels without BatchNorm (dashed, left).
# Its gradients scale with pixel values in the hundreds, so the first updates are huge.
# The loss jumps, the ReLUs die, and from then on the loss sits on the ln 2 line: the
# network answers 0.5 for every face and learns nothing more. Standardizing the inputs on
# its own fixes this (solid, left). BatchNormalization after each convolution also fixes it,
# even on raw pixels (dashed, right), because it rescales the first convolution's output
# before that output reaches a ReLU. With BN in place, both curves fall faster than without
# it, and they nearly coincide. Once BN follows the first convolution, the input's scale
# matters little, and standardizing as well costs nothing and does not hurt.

# %% [markdown]
# ## 6. In your own words
#
# Two questions to answer in a few sentences each. A person reads and scores them (the
# tests do not), so say *why*, in your own words; you may point to the experiment above.
# Write in the cell below each question, in place of `YOUR ANSWER HERE`. Keep that cell
# (it is tagged `written:...`, which is how the grader finds your answer); if you need
# more room, add text cells right below it. Your answer is read as text, never run.

# %% [markdown]
# ### Question 1: Why BatchNormalization right after Conv2D? (3 points)
#
# Why do networks put `BatchNormalization` directly after each `Conv2D`, and before its
# ReLU rather than after it? What happens to the convolution's bias?

# %% [markdown] tags=["written:why_bn_after_conv"]
# The output of a `Conv2D` is the input of the next layer. Its mean and scale depend on the
# convolution's weights, which change at every update, so without normalization the next
# layer keeps chasing a moving target and its loss surface can be as badly conditioned as
# one fed with raw pixels. BatchNormalization standardizes that output channel by channel
# (batch statistics in training, moving averages at test time), so the next layer's input
# keeps a stable distribution: it is input standardization, applied inside the network.
#
# It goes before the ReLU so that each channel arrives centred (on beta, 0 at first): the
# ReLU keeps about half of the values and gamma and beta learn where the cut falls. Without
# it a channel whose outputs are mostly negative dies (zero output, no gradient) and one
# that is mostly positive acts as if linear; after the ReLU, BN would normalize values
# whose negative half is already gone.
#
# The convolution's bias becomes redundant: BN subtracts the channel mean, which removes
# any constant added by the bias, and beta adds back a learned shift. Hence
# `Conv2D(..., use_bias=False)` in many implementations.

# %% [markdown]
# ### Question 2: Should the inputs be standardized too? (2 points)
#
# With BatchNormalization after every `Conv2D`, should the input images still be
# standardized? Why, and with which statistics?

# %% [markdown] tags=["written:standardize_inputs"]
# Yes. The gradient of a first-layer weight is proportional to its input, so channels on
# different scales (red about 160 ± 45, blue about 67 ± 20) give steps of very different
# sizes: the loss surface is a long narrow valley and no single learning rate suits every
# direction. Standardizing each channel evens the steps out. The first `Conv2D` sees the
# raw inputs before any BatchNormalization, so BN does not do this for it, although the
# experiment shows BN after the first convolution rescues raw inputs to a large extent.
# Doing both is cheap and does no harm.
#
# The mean and standard deviation must be measured on the training set only and applied
# unchanged to the test set (and to any later data): the test set stands in for data
# that arrives after training, so using its own statistics leaks information about it and
# transforms it differently from the images the model learned on.

# %% [markdown]
# ## Summary
#
# * Standardize the inputs per channel, with statistics from the training set only. This
#   evens out the loss surface so one learning rate fits every direction.
# * Put BatchNormalization right after each `Conv2D`, before its ReLU. It does the same
#   thing for the input of every later layer: batch statistics during training, moving
#   averages at test time.
# * Doing both is normal, cheap and safe.
