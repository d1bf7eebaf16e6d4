# ---
# jupyter:
#   grader:
#     assignment: conv_bn_torch
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Normalize the inputs, then normalize inside: `nn.BatchNorm2d` after `nn.Conv2d` (PyTorch)
#
# Almost every course on convolutional networks gets this question: *why do models put an
# `nn.BatchNorm2d` straight after each `nn.Conv2d`? And if the network normalizes inside, do
# I still need to normalize the input images?*
#
# Short answer: do both. They are one idea, used in two places. In this notebook you
# implement it in four exercises, in PyTorch's conventions, then run a small experiment that
# shows what each half does:
#
# 1. `standardize`: per-channel standardization of images, using training statistics only.
# 2. `batchnorm_forward`: what `nn.BatchNorm2d` computes in `train()` mode, in NumPy.
# 3. `happy_model`: an `nn.Sequential` built as Conv → BatchNorm → ReLU.
# 4. `ConvolutionalModel`: the same pattern twice, as an `nn.Module` subclass with `forward`.
#
# **PyTorch's layout.** PyTorch keeps a batch of images as `(N, C, H, W)`: batch, channels,
# height, width. The channels are **axis 1**, not the last axis as in Keras. Everything
# "per channel" in this notebook pools over axes 0, 2 and 3.
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
    warm_up("conv_bn_torch")
except ImportError:  # the notebook runs without the grader too
    pass

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faces import CLASS_NAMES, load_faces

# %% [markdown]
# ## 1. The data
#
# The images are 64×64 RGB cartoon faces, either smiling (label 1) or frowning (label 0).
# They are drawn by `faces.py`, which sits next to this notebook. Think of them as photos
# from many different cameras: each image has its own brightness, contrast and noise. The
# whole set also has a warm colour cast, so red pixels are bright and widely spread while
# blue pixels are dark and packed close together.
#
# `load_faces` returns images as `(N, H, W, C)`, the layout of image files and of Keras.
# We move the channels to axis 1 once, here, with `transpose(0, 3, 1, 2)`.

# %%
X_train_hwc, y_train, X_test_hwc, y_test = load_faces()
X_train = X_train_hwc.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
X_test = X_test_hwc.transpose(0, 3, 1, 2)
print("X_train:", X_train.shape, X_train.dtype, "  X_test:", X_test.shape)
print("share of smiling faces in the training set:", y_train.mean())
for c, name in enumerate(("red", "green", "blue")):
    print(f"{name:>5} channel: mean {X_train[:, c].mean():6.1f}   std {X_train[:, c].std():5.1f}")

fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for ax, image, label in zip(axes.flat, X_train_hwc, y_train):
    ax.imshow(image)  # matplotlib wants (H, W, C)
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
# all positive, so for a single example every weight's gradient has the same sign, and the
# path zig-zags.
#
# Standardizing each channel (subtract its mean, divide by its standard deviation) centres
# the inputs at 0 and puts every channel on the same scale: the valley becomes closer to
# round, and one learning rate suits every direction.
#
# Two details matter:
#
# * **One mean and one standard deviation per channel.** A convolution slides the same
#   filter over every position, so all pixels of a channel play the same role. Pool the
#   statistics over images, rows and columns: in `(N, C, H, W)`, over `axis=(0, 2, 3)`.
# * **Training statistics only.** The test set stands in for images that arrive after
#   training. Measure the mean and standard deviation on `X_train` and apply *those same
#   numbers* to `X_test`. Using the test set's own statistics leaks information about it,
#   and it transforms the test images differently from the images the model learned on.
#
# ### Exercise 1: `standardize(X_train, X_test)`
#
# Return `(X_train_std, X_test_std)` as float32 arrays. In both arrays, each channel `c`
# becomes `(X[:, c] - mean_c) / std_c`, where `mean_c` and `std_c` are the mean and the
# population standard deviation (NumPy's default, `ddof=0`) of channel `c` **in `X_train`**.
# Do not modify the arrays you were given.
#
# *Hint:* NumPy lines shapes up from the **last** axis, so a shape-`(3,)` mean would meet
# the width `W`, not the channels. `X_train.mean(axis=(0, 2, 3), keepdims=True)` keeps the
# shape `(1, 3, 1, 1)`, which broadcasts against `(N, 3, 64, 64)` channel by channel.

# %% tags=["standardize"]
def standardize(X_train, X_test):
    """Standardize both sets per channel, with statistics measured on X_train only.

    Arguments:
    X_train -- training images, shape (N, C, H, W), any numeric dtype
    X_test -- test images, shape (M, C, H, W)

    Returns:
    (X_train_std, X_test_std) -- float32 arrays with the input shapes
    """
    ### BEGIN SOLUTION
    train = np.asarray(X_train, dtype=np.float64)
    test = np.asarray(X_test, dtype=np.float64)
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
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
# centred at 0 with a spread of 1. The test set's means come out close to 0 but not exactly
# 0. That is correct: the test set was transformed with the training set's numbers.

# %%
X_train_std, X_test_std = standardize(X_train, X_test)

fig, (before, after) = plt.subplots(1, 2, figsize=(11, 3.5))
for c, (name, colour) in enumerate(zip(("red", "green", "blue"), ("tab:red", "tab:green", "tab:blue"))):
    before.hist(X_train[:100, c].ravel(), bins=64, range=(0, 255), histtype="step", color=colour, label=name)
    after.hist(X_train_std[:100, c].ravel(), bins=32, range=(-4, 4), histtype="step", color=colour, label=name)
before.set(title="raw pixels", xlabel="value", ylabel="count")
after.set(title="standardized with training statistics", xlabel="value")
before.legend()
plt.show()

print("test set after standardize, per-channel mean:", X_test_std.mean(axis=(0, 2, 3)).round(3),
      " std:", X_test_std.std(axis=(0, 2, 3)).round(3))

# %% [markdown]
# ## 3. Batch normalization: the same idea, inside the network
#
# The second layer of a network never sees your standardized images. It sees the first
# layer's output, whose mean and scale depend on the first layer's weights, and those
# change at every update. So the second layer keeps chasing a moving target.
#
# `nn.BatchNorm2d(C)` standardizes its input channel by channel, just as in exercise 1, but
# with the statistics of the current mini-batch. For each channel $c$, with the mean and
# variance taken over the batch and over all positions (axes 0, 2, 3):
#
# $$\mu_c = \operatorname{mean}(x_{\cdot,c,\cdot,\cdot}),\qquad \sigma_c^2 = \operatorname{var}(x_{\cdot,c,\cdot,\cdot}),\qquad
# \hat x = \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \varepsilon}},\qquad y = \gamma_c\,\hat x + \beta_c$$
#
# * $\varepsilon$ (PyTorch: `eps=1e-5`) keeps the division safe when a channel is almost
#   constant. It goes **inside** the square root.
# * $\sigma_c^2$ is the **biased** variance (divide by the number of values, `ddof=0`).
#   Careful: `torch.var` and `Tensor.var` default to the unbiased one (`correction=1`).
# * $\gamma_c$ and $\beta_c$ are learned: the layer's `weight` and `bias`. They let the
#   network give the next layer any mean and scale it wants, including undoing the
#   normalization. BN removes the drift, not the freedom.
# * **`model.train()` and `model.eval()`.** At test time there may be only one image, and a
#   prediction should not depend on which other images share its batch. So in `train()`
#   mode the layer also keeps running averages of $\mu$ and $\sigma^2$ (`running_mean`,
#   `running_var`), and after `model.eval()` it uses them instead of the batch's. Forgetting
#   `model.eval()` before evaluating is one of PyTorch's classic bugs.
#
# ### Exercise 2: `batchnorm_forward(x, gamma, beta, eps=1e-5)`
#
# Implement the `train()`-mode forward pass in NumPy. `x` has its channels on axis 1 and any
# rank: `(N, C)` (what `nn.BatchNorm1d` sees after a Linear layer), `(N, C, L)` or
# `(N, C, H, W)`. `gamma` and `beta` have shape `(C,)`. Compute the mean and the biased
# variance over every axis except axis 1, then return `gamma * x_hat + beta` with the shape
# of `x`, with `gamma` and `beta` reshaped to line up with axis 1.

# %% tags=["batchnorm_forward"]
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch normalization in train() mode, channels on axis 1.

    Arguments:
    x -- array of shape (N, C, ...)
    gamma, beta -- arrays of shape (C,), the learned scale and shift
    eps -- added to the variance before the square root

    Returns:
    out -- array with the shape of x
    """
    ### BEGIN SOLUTION
    axes = (0,) + tuple(range(2, x.ndim))
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma.reshape(per_channel) * x_hat + beta.reshape(per_channel)
    ### END SOLUTION
    return out


# %%
from grader import check
check("batchnorm_forward")

# %% [markdown]
# Compare your function with PyTorch's own layer, in both modes:

# %%
rng = np.random.default_rng(1)
x = rng.normal(3.0, 2.0, size=(8, 4, 5, 5)).astype("float32")
gamma = rng.uniform(0.5, 1.5, size=4).astype("float32")
beta = rng.normal(size=4).astype("float32")

bn_layer = nn.BatchNorm2d(4)
with torch.no_grad():
    bn_layer.weight.copy_(torch.from_numpy(gamma))
    bn_layer.bias.copy_(torch.from_numpy(beta))

yours = batchnorm_forward(x, gamma, beta)
with torch.no_grad():
    torch_train = bn_layer.train()(torch.from_numpy(x)).numpy()
    torch_eval = bn_layer.eval()(torch.from_numpy(x)).numpy()
print(f"largest |yours - BatchNorm2d, train()| = {np.abs(yours - torch_train).max():.1e}")
print(f"largest |yours - BatchNorm2d, eval() | = {np.abs(yours - torch_eval).max():.2f}")
print("running_mean after one train() call:", bn_layer.running_mean.numpy().round(3))

# %% [markdown]
# In `train()` mode your function and PyTorch agree up to float32 rounding. In `eval()` mode
# PyTorch uses its running averages instead. These start at mean 0 and variance 1 and move
# 10% of the way towards each batch's statistics per training step (`momentum=0.1`; note
# PyTorch's momentum is the weight of the *new* batch, Keras' the weight of the old average).
# So the untrained layer barely changes `x` in `eval()` mode, and its output differs from
# yours by whole units.
#
# ## 4. Where it goes: Conv2d → BatchNorm2d → ReLU
#
# The output of an `nn.Conv2d` is simply the input of the next layer, so normalizing it is
# input standardization again, applied inside the network. Well-known architectures
# (ResNet, for example) place it between the convolution and the nonlinearity:
#
# `nn.Conv2d → nn.BatchNorm2d → nn.ReLU`
#
# Why before the ReLU and not after? ReLU sets every negative value to zero. With BN in
# front, each channel's values arrive centred on $\beta_c$ (0 at the start), so the ReLU
# keeps about half of them, and $\gamma_c, \beta_c$ learn where the cut should fall for
# that channel. Without BN, a channel whose convolution outputs happen to be mostly negative
# is zeroed almost everywhere and gets almost no gradient (a "dead" channel). Placed after
# the ReLU, BN would normalize values whose negative half is already gone.
#
# Two PyTorch details:
#
# * `nn.BatchNorm2d(num_features)` must be told how many channels it normalizes: the
#   `out_channels` of the convolution before it; a wrong number raises an error at the
#   first call.
# * The convolution's bias is redundant: BN subtracts each channel's mean, which removes any
#   constant the bias added, and $\beta$ adds back a learned shift. Many implementations
#   therefore write `nn.Conv2d(..., bias=False)` before a BatchNorm2d, and so do we. The
#   default `bias=True` computes the same network here and is accepted too.
#
# ### Exercise 3: `happy_model()`
#
# Return an `nn.Sequential` with exactly these layers, in this order, for 64×64 RGB images
# (batches of shape `(N, 3, 64, 64)`):
#
# 1. `nn.ZeroPad2d(3)`: 64 + 2·3 = 70 pixels a side
# 2. `nn.Conv2d(3, 32, kernel_size=7, bias=False)`: 70 − 7 + 1 = 64, with 32 channels
# 3. `nn.BatchNorm2d(32)`
# 4. `nn.ReLU()`
# 5. `nn.MaxPool2d(2)`: 32×32
# 6. `nn.Flatten()`: 32·32·32 = 32768 values per image
# 7. `nn.Linear(32 * 32 * 32, 1)`
# 8. `nn.Sigmoid()`
#
# Unlike Keras, PyTorch layers are told their input size (`in_channels`, `in_features`):
# work them out from the shapes in the comments.

# %% tags=["happy_model"]
def happy_model():
    """Binary classifier for 64x64 RGB faces: one Conv -> BN -> ReLU block.

    Returns:
    model -- an nn.Sequential taking (N, 3, 64, 64) batches, returning (N, 1) probabilities
    """
    ### BEGIN SOLUTION
    model = nn.Sequential(
        nn.ZeroPad2d(3),
        nn.Conv2d(3, 32, kernel_size=7, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 32 * 32, 1),
        nn.Sigmoid(),
    )
    ### END SOLUTION
    return model


# %%
from grader import check
check("happy_model")

# %%
print(happy_model())

# %% [markdown]
# ### Exercise 4: `ConvolutionalModel(image_size=(64, 64), num_classes=6)`
#
# Now build the same pattern twice as an `nn.Module` subclass, the way most PyTorch models
# are written: create every layer in `__init__` (as attributes, so PyTorch registers their
# parameters), and call them in order in `forward`. The layers, for images of
# `image_size = (height, width)` with 3 channels:
#
# 1. `nn.Conv2d(3, 8, kernel_size=5, padding=2, bias=False)`: padding 2 keeps the size ("same")
# 2. `nn.BatchNorm2d(8)`
# 3. `nn.ReLU()`
# 4. `nn.MaxPool2d(4)`: height and width divided by 4
# 5. `nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False)`
# 6. `nn.BatchNorm2d(16)`
# 7. `nn.ReLU()`
# 8. `nn.MaxPool2d(4)`: divided by 4 again, so 16 in all
# 9. `nn.Flatten()`
# 10. `nn.Linear(16 * (height // 16) * (width // 16), num_classes)`: 16·4·4 = 256 inputs for 64×64
# 11. `nn.Softmax(dim=1)`: probabilities over the classes (axis 1 of `(N, num_classes)`)
#
# (With `nn.CrossEntropyLoss` you would return the raw scores and leave the softmax to the
# loss; we keep it here so the model's output is comparable with the Keras version.)

# %% tags=["ConvolutionalModel"]
class ConvolutionalModel(nn.Module):
    """Classifier over `num_classes`: two Conv -> BN -> ReLU -> MaxPool blocks."""

    def __init__(self, image_size=(64, 64), num_classes=6):
        super().__init__()
        height, width = image_size
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 8, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(4)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(4)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * (height // 16) * (width // 16), num_classes)
        self.softmax = nn.Softmax(dim=1)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.softmax(self.fc(self.flatten(x)))
        ### END SOLUTION
        return x


# %%
from grader import check
check("ConvolutionalModel")

# %%
print(ConvolutionalModel())

# %% [markdown]
# ## 5. Experiment: which normalization matters, and does doing both hurt?
#
# We train one small network (the images averaged down to 32×32, two Conv → [BatchNorm2d] →
# ReLU → MaxPool blocks, then a single sigmoid unit) four times for 8 epochs, on either raw
# pixels or standardized ones, and either with or without BatchNorm2d. Every run starts from
# the same seed, so only those two switches differ. The optimizer is plain SGD with
# momentum: adaptive optimizers such as Adam rescale each weight's step, which would partly
# hide the effect of input scale that we want to see here. The four runs take well under a
# minute on a CPU (33 s measured on a busy two-core server).

# %%
def small_net(batchnorm):
    layers = [nn.AvgPool2d(2)]  # 32x32 images are enough here, and four times cheaper
    in_channels = 3
    for out_channels in (8, 16):
        layers.append(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers += [nn.ReLU(), nn.MaxPool2d(4)]
        in_channels = out_channels
    layers += [nn.Flatten(), nn.Linear(16 * 2 * 2, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def train(model, images, labels, test_images, test_labels, epochs=8, batch_size=32):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels.astype("float32"))[:, None]
    losses = []
    for epoch in range(epochs):
        model.train()  # BatchNorm2d: batch statistics, running averages updated
        order = torch.randperm(len(images))
        total = 0.0
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            loss = F.binary_cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
    model.eval()  # BatchNorm2d: running averages; never evaluate in train() mode
    with torch.no_grad():
        predictions = model(torch.from_numpy(test_images))[:, 0].numpy() > 0.5
    return losses, float((predictions == test_labels).mean())


X_train_std, X_test_std = standardize(X_train, X_test)
inputs = {
    "raw pixels": (X_train.astype("float32"), X_test.astype("float32")),
    "standardized": (X_train_std, X_test_std),
}
runs = {}
start = time.perf_counter()
for batchnorm in (False, True):
    for input_name, (train_images, test_images) in inputs.items():
        torch.manual_seed(0)  # same initial weights and batch order every run
        runs[(batchnorm, input_name)] = train(small_net(batchnorm), train_images, y_train, test_images, y_test)
print(f"4 runs took {time.perf_counter() - start:.0f} s\n")

print(f"{'BatchNorm':<11}{'inputs':<14}{'loss, epoch 1':>14}{'loss, last epoch':>18}{'test accuracy':>15}")
for (batchnorm, input_name), (losses, accuracy) in runs.items():
    print(f"{'yes' if batchnorm else 'no':<11}{input_name:<14}{losses[0]:>14.3f}{losses[-1]:>18.4f}{accuracy:>15.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, batchnorm in zip(axes, (False, True)):
    for input_name, style in (("raw pixels", "--o"), ("standardized", "-o")):
        losses = runs[(batchnorm, input_name)][0]
        ax.plot(range(1, len(losses) + 1), losses, style, label=input_name)
    ax.axhline(np.log(2), color="grey", lw=0.8, ls=":", label="ln 2: always answering 0.5")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("with BatchNorm2d" if batchnorm else "without BatchNorm2d")
axes[0].set_ylabel("training loss (log scale)")
axes[0].legend()
plt.show()

# %% [markdown]
# **What the curves show.** Look first at raw pixels without BatchNorm2d (dashed, left).
# Its gradients scale with pixel values in the hundreds, so the first updates are huge: the
# loss jumps, the ReLUs die, and the loss stalls near the ln 2 line, a network that answers
# 0.5 for every face. Standardizing the inputs on its own fixes this (solid, left).
# BatchNorm2d after each convolution also fixes it, even on raw pixels (dashed, right),
# because it rescales the first convolution's output before that output reaches a ReLU.
# With BN in place both curves fall faster and nearly coincide: once BN follows the first
# convolution the input's scale matters little, and standardizing as well costs nothing.

# %% [markdown]
# ## 6. In your own words
#
# Two questions to answer in a few sentences each. A person reads and scores them (the
# tests do not), so say *why*, in your own words; you may point to the experiment above.
# Write in the cell below each question, in place of `YOUR ANSWER HERE`. Keep that cell
# (it is tagged `written:...`, which is how the grader finds your answer); if you need
# more room, add text cells right below it. Your answer is read as text, never run.

# %% [markdown]
# ### Question 1: Why `nn.BatchNorm2d` right after `nn.Conv2d`? (3 points)
#
# Why do networks put `nn.BatchNorm2d` directly after each `nn.Conv2d`, and before its ReLU
# rather than after it? What happens to the convolution's bias?

# %% [markdown] tags=["written:why_bn_after_conv"]
# The output of a convolution is the input of the next layer. Its mean and scale depend on
# the convolution's weights, which change at every update, so without normalization the
# next layer keeps chasing a moving target. BatchNorm2d standardizes that output channel by
# channel (batch statistics in train(), running averages after eval()), so the next layer's
# input keeps a stable distribution: input standardization, inside the network.
#
# It goes before the ReLU so that each channel arrives centred (on beta, 0 at first): the
# ReLU keeps about half of the values and gamma and beta learn where the cut falls. Without
# it a channel whose outputs are mostly negative dies; after the ReLU, BN would normalize
# values whose negative half is already gone.
#
# The convolution's bias becomes redundant: BN subtracts the channel mean, which removes any
# constant the bias added, and beta adds back a learned shift; hence `bias=False`.

# %% [markdown]
# ### Question 2: Should the inputs be standardized too? (2 points)
#
# With `nn.BatchNorm2d` after every `nn.Conv2d`, should the input images still be
# standardized? Why, and with which statistics?

# %% [markdown] tags=["written:standardize_inputs"]
# Yes. The gradient of a first-layer weight is proportional to its input, so channels on
# different scales give steps of very different sizes and no single learning rate suits
# every direction. Standardizing each channel evens the steps out. The first convolution
# sees the raw inputs before any BatchNorm2d, although the experiment shows BN after it
# rescues raw inputs to a large extent. Doing both is cheap and does no harm.
#
# The mean and standard deviation come from the training set only, over axes (0, 2, 3), and
# are applied unchanged to the test set: using the test set's own statistics leaks
# information about it and transforms it differently from the training images.

# %% [markdown]
# ## Summary
#
# * PyTorch images are `(N, C, H, W)`: per-channel statistics pool over axes 0, 2 and 3.
# * Standardize the inputs per channel, with statistics from the training set only.
# * Put `nn.BatchNorm2d(out_channels)` right after each `nn.Conv2d`, before its ReLU: batch
#   statistics in `train()`, running averages after `model.eval()`.
# * Doing both is normal, cheap and safe.
