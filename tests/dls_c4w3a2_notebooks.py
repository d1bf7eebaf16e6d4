"""Course-layout notebooks for dls_c4w3a2 (Image Segmentation with U-Net): the valid
variants real students hand in, and their typical mistakes, each as a whole notebook.

Shared by `tests/test_dls_c4w3a2.py`, `bench/model_speed_bench.py` and the samples; kept
apart so the test module reads as what is checked. The layout follows the course's: the
graded cells start with `# UNQ_Cn` / `# GRADED FUNCTION: name` (often missing), the
notebook imports the course's helper modules (`test_utils`, `outputs`) and reads a dataset
folder (`./data/CameraRGB/`), test cells compare `summary(model)` with expected lists, and
training and prediction cells follow. None of those exist where grading happens; none of
that top-level code is ever run.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _swap(text: str, old: str, new: str, count: int = 1) -> str:
    """`str.replace` that fails loudly: a variant whose edit silently did not apply would
    make its test pass for the wrong reason."""
    if text.count(old) != count:
        raise ValueError(f"expected {count} of {old!r} in the notebook text, found {text.count(old)}")
    return text.replace(old, new)


IMPORTS = """\
import tensorflow as tf
import numpy as np

from tensorflow.keras.layers import Input
from tensorflow.keras.layers import Conv2D
from tensorflow.keras.layers import MaxPooling2D
from tensorflow.keras.layers import Dropout
from tensorflow.keras.layers import Conv2DTranspose
from tensorflow.keras.layers import concatenate

from test_utils import summary, comparator
"""

DATA = """\
import os
import numpy as np # linear algebra
import pandas as pd # data processing, CSV file I/O (e.g. pd.read_csv)

import imageio

import matplotlib.pyplot as plt
%matplotlib inline

path = ''
image_path = os.path.join(path, './data/CameraRGB/')
mask_path = os.path.join(path, './data/CameraMask/')
image_list_orig = os.listdir(image_path)
image_list = [image_path+i for i in image_list_orig]
mask_list = [mask_path+i for i in image_list_orig]
"""

SHOW_IMAGE = """\
N = 2
img = imageio.imread(image_list[N])
mask = imageio.imread(mask_list[N])

fig, arr = plt.subplots(1, 2, figsize=(14, 10))
arr[0].imshow(img)
arr[0].set_title('Image')
arr[1].imshow(mask[:, :, 0])
arr[1].set_title('Segmentation')
"""

DATASET = """\
image_list_ds = tf.data.Dataset.list_files(image_list, shuffle=False)
mask_list_ds = tf.data.Dataset.list_files(mask_list, shuffle=False)

for path in zip(image_list_ds.take(3), mask_list_ds.take(3)):
    print(path)

image_filenames = tf.constant(image_list)
masks_filenames = tf.constant(mask_list)

dataset = tf.data.Dataset.from_tensor_slices((image_filenames, masks_filenames))
"""

PREPROCESS = """\
def process_path(image_path, mask_path):
    img = tf.io.read_file(image_path)
    img = tf.image.decode_png(img, channels=3)
    img = tf.image.convert_image_dtype(img, tf.float32)

    mask = tf.io.read_file(mask_path)
    mask = tf.image.decode_png(mask, channels=3)
    mask = tf.math.reduce_max(mask, axis=-1, keepdims=True)
    return img, mask

def preprocess(image, mask):
    input_image = tf.image.resize(image, (96, 128), method='nearest')
    input_mask = tf.image.resize(mask, (96, 128), method='nearest')

    return input_image, input_mask

image_ds = dataset.map(process_path)
processed_image_ds = image_ds.map(preprocess)
"""

CONV_BLOCK = """\
# UNQ_C1
# GRADED FUNCTION: conv_block
def conv_block(inputs=None, n_filters=32, dropout_prob=0, max_pooling=True):
    \"\"\"
    Convolutional downsampling block

    Arguments:
        inputs -- Input tensor
        n_filters -- Number of filters for the convolutional layers
        dropout_prob -- Dropout probability
        max_pooling -- Use MaxPooling2D to reduce the spatial dimensions of the output volume
    Returns:
        next_layer, skip_connection --  Next layer and skip connection outputs
    \"\"\"

    ### START CODE HERE
    conv = Conv2D(n_filters, # Number of filters
                  3,   # Kernel size
                  activation='relu',
                  padding='same',
                  kernel_initializer='he_normal')(inputs)
    conv = Conv2D(n_filters, # Number of filters
                  3,   # Kernel size
                  activation='relu',
                  padding='same',
                  kernel_initializer='he_normal')(conv)
    ### END CODE HERE

    # if dropout_prob > 0 add a dropout layer, with the variable dropout_prob as parameter
    if dropout_prob > 0:
         ### START CODE HERE
        conv = Dropout(dropout_prob)(conv)
         ### END CODE HERE


    # if max_pooling is True add a MaxPooling2D with 2x2 pool_size
    if max_pooling:
        ### START CODE HERE
        next_layer = MaxPooling2D(pool_size=(2,2))(conv)
        ### END CODE HERE

    else:
        next_layer = conv

    skip_connection = conv

    return next_layer, skip_connection
"""

CONV_BLOCK_TEST = """\
input_size=(96, 128, 3)
n_filters = 32
inputs = Input(input_size)
cblock1 = conv_block(inputs, n_filters * 1)
model1 = tf.keras.Model(inputs=inputs, outputs=cblock1)

output1 = [['InputLayer', [(None, 96, 128, 3)], 0],
            ['Conv2D', (None, 96, 128, 32), 896, 'same', 'relu', 'HeNormal'],
            ['Conv2D', (None, 96, 128, 32), 9248, 'same', 'relu', 'HeNormal'],
            ['MaxPooling2D', (None, 48, 64, 32), 0]]

print('Block 1:')
for layer in summary(model1):
    print(layer)

comparator(summary(model1), output1)

inputs = Input(input_size)
cblock1 = conv_block(inputs, n_filters * 32, dropout_prob=0.1, max_pooling=True)
model2 = tf.keras.Model(inputs=inputs, outputs=cblock1)
comparator(summary(model2), output2)
"""

UPSAMPLING_BLOCK = """\
# UNQ_C2
# GRADED FUNCTION: upsampling_block
def upsampling_block(expansive_input, contractive_input, n_filters=32):
    \"\"\"
    Convolutional upsampling block

    Arguments:
        expansive_input -- Input tensor from previous layer
        contractive_input -- Input tensor from previous skip layer
        n_filters -- Number of filters for the convolutional layers
    Returns:
        conv -- Tensor output
    \"\"\"

    ### START CODE HERE
    up = Conv2DTranspose(
                 n_filters,    # number of filters
                 3,    # Kernel size
                 strides=2,
                 padding='same')(expansive_input)

    # Merge the previous output and the contractive_input
    merge = concatenate([up, contractive_input], axis=3)
    conv = Conv2D(n_filters,   # Number of filters
                 3,     # Kernel size
                 activation='relu',
                 padding='same',
                 kernel_initializer='he_normal')(merge)
    conv = Conv2D(n_filters,  # Number of filters
                 3,   # Kernel size
                 activation='relu',
                 padding='same',
                 kernel_initializer='he_normal')(conv)
    ### END CODE HERE

    return conv
"""

UPSAMPLING_BLOCK_TEST = """\
input_size1=(12, 16, 256)
input_size2 = (24, 32, 128)
n_filters = 32
expansive_inputs = Input(input_size1)
contractive_inputs =  Input(input_size2)
cblock1 = upsampling_block(expansive_inputs, contractive_inputs, n_filters * 1)
model1 = tf.keras.Model(inputs=[expansive_inputs, contractive_inputs], outputs=cblock1)

output1 = [['InputLayer', [(None, 12, 16, 256)], 0],
            ['Conv2DTranspose', (None, 24, 32, 32), 73760],
            ['InputLayer', [(None, 24, 32, 128)], 0],
            ['Concatenate', (None, 24, 32, 160), 0],
            ['Conv2D', (None, 24, 32, 32), 46112, 'same', 'relu', 'HeNormal'],
            ['Conv2D', (None, 24, 32, 32), 9248, 'same', 'relu', 'HeNormal']]

print('Block 1:')
for layer in summary(model1):
    print(layer)

comparator(summary(model1), output1)
"""

UNET_MODEL = """\
# UNQ_C3
# GRADED FUNCTION: unet_model
def unet_model(input_size=(96, 128, 3), n_filters=32, n_classes=23):
    \"\"\"
    Unet model

    Arguments:
        input_size -- Input shape
        n_filters -- Number of filters for the convolutional layers
        n_classes -- Number of output classes
    Returns:
        model -- tf.keras.Model
    \"\"\"
    inputs = Input(input_size)
    # Contracting Path (encoding)
    # Add a conv_block with the inputs of the unet_ model and n_filters
    ### START CODE HERE
    cblock1 = conv_block(inputs, n_filters)
    # Chain the first element of the output of each block to be the input of the next conv_block.
    # Double the number of filters at each new step
    cblock2 = conv_block(cblock1[0], n_filters*2)
    cblock3 = conv_block(cblock2[0], n_filters*4)
    cblock4 = conv_block(cblock3[0], n_filters*8, dropout_prob=0.3) # Include a dropout_prob of 0.3 for this layer
    # Include a dropout_prob of 0.3 for this layer, and avoid the max_pooling layer
    cblock5 = conv_block(cblock4[0], n_filters*16, dropout_prob=0.3, max_pooling=False)
    ### END CODE HERE

    # Expanding Path (decoding)
    # Add the first upsampling_block.
    # Use the cblock5[0] as expansive_input and cblock4[1] as contractive_input and n_filters * 8
    ### START CODE HERE
    ublock6 = upsampling_block(cblock5[0], cblock4[1],  n_filters*8)
    # Chain the output of the previous block as expansive_input and the corresponding contractive block output.
    # Note that you must use the second element of the contractive block i.e before the maxpooling layer.
    # At each step, use half the number of filters of the previous block
    ublock7 = upsampling_block(ublock6, cblock3[1],  n_filters*4)
    ublock8 = upsampling_block(ublock7, cblock2[1],  n_filters*2)
    ublock9 = upsampling_block(ublock8, cblock1[1],  n_filters)
    ### END CODE HERE

    conv9 = Conv2D(n_filters,
                 3,
                 activation='relu',
                 padding='same',
                 kernel_initializer='he_normal')(ublock9)

    # Add a Conv2D layer with n_classes filter, kernel size of 1 and a 'same' padding
    ### START CODE HERE
    conv10 = Conv2D(n_classes, 1, padding='same')(conv9)
    ### END CODE HERE

    model = tf.keras.Model(inputs=inputs, outputs=conv10)

    return model
"""

UNET_TEST = """\
import outputs
img_height = 96
img_width = 128
num_channels = 3

unet = unet_model((img_height, img_width, num_channels))
comparator(summary(unet), outputs.unet_model_output)
"""

SUMMARY = "unet.summary()\n"

COMPILE = """\
unet.compile(optimizer='adam',
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])
"""

DISPLAY = """\
def display(display_list):
    plt.figure(figsize=(15, 15))

    title = ['Input Image', 'True Mask', 'Predicted Mask']

    for i in range(len(display_list)):
        plt.subplot(1, len(display_list), i+1)
        plt.title(title[i])
        plt.imshow(tf.keras.preprocessing.image.array_to_img(display_list[i]))
        plt.axis('off')
    plt.show()

for image, mask in image_ds.take(1):
    sample_image, sample_mask = image, mask
    print(mask.shape)
display([sample_image, sample_mask])
"""

TRAIN = """\
EPOCHS = 40
VAL_SUBSPLITS = 5
BUFFER_SIZE = 500
BATCH_SIZE = 32
train_dataset = processed_image_ds.cache().shuffle(BUFFER_SIZE).batch(BATCH_SIZE)
print(processed_image_ds.element_spec)
model_history = unet.fit(train_dataset, epochs=EPOCHS)
"""

PREDICT = """\
def create_mask(pred_mask):
    pred_mask = tf.argmax(pred_mask, axis=-1)
    pred_mask = pred_mask[..., tf.newaxis]
    return pred_mask[0]

def show_predictions(dataset=None, num=1):
    \"\"\"
    Displays the first image of each of the num batches
    \"\"\"
    if dataset:
        for image, mask in dataset.take(num):
            pred_mask = unet.predict(image)
            display([image[0], mask[0], create_mask(pred_mask)])
    else:
        display([sample_image, sample_mask,
             create_mask(unet.predict(sample_image[tf.newaxis, ...]))])

plt.plot(model_history.history["accuracy"])
show_predictions(train_dataset, 6)
"""


# ------------------------------------------------------------------ valid variants

def _without_headers(code: str) -> str:
    """About one notebook in seven lost the `# UNQ_Cn` / `# GRADED FUNCTION` lines."""
    return re.sub(r"^# (UNQ_C\d|GRADED FUNCTION: \w+)\n", "", code, flags=re.M)


def _spelled_otherwise(conv: str, up: str, unet: str) -> tuple[str, str, str]:
    """Spellings seen in real notebooks that compute the same network: the MaxPool2D
    alias, HeNormal() objects and the 'HeNormal' string, dropout_prob by position,
    max_pooling=None for the bottleneck, a final kernel of (1, 1), n_filters*2*2, and a
    conv_block without the `inputs=None` default."""
    conv = _swap(conv, "def conv_block(inputs=None, n_filters=32,", "def conv_block(inputs, n_filters=32,")
    conv = _swap(conv, "kernel_initializer='he_normal')(inputs)",
                 "kernel_initializer=tf.keras.initializers.HeNormal())(inputs)")
    conv = _swap(conv, "kernel_initializer='he_normal')(conv)", "kernel_initializer='HeNormal')(conv)")
    conv = _swap(conv, "next_layer = MaxPooling2D(pool_size=(2,2))(conv)",
                 "next_layer = tf.keras.layers.MaxPool2D(2, strides=2)(conv)")
    up = _swap(up, "strides=2,", "strides=(2, 2),")
    unet = _swap(unet, "cblock3 = conv_block(cblock2[0], n_filters*4)",
                 "cblock3 = conv_block(cblock2[0], n_filters*2*2)")
    unet = _swap(unet, "conv_block(cblock3[0], n_filters*8, dropout_prob=0.3)",
                 "conv_block(cblock3[0], n_filters*8, 0.3)")
    unet = _swap(unet, "dropout_prob=0.3, max_pooling=False)", "0.3, max_pooling=None)")
    unet = _swap(unet, "Conv2D(n_classes, 1, padding='same')", "Conv2D(n_classes, (1, 1), padding='same')")
    return conv, up, unet


def _tfl_style(text: str) -> str:
    """`import tensorflow.keras.layers as tfl` and `tfl.Conv2D(...)`, the other import
    style real notebooks use."""
    for name in ("Conv2DTranspose", "Conv2D", "MaxPooling2D", "Dropout", "concatenate"):
        text = re.sub(rf"(?<![\w.]){name}\(", f"tfl.{name}(", text)
    return text


VARIANTS = ("course", "no_headers", "spelled_otherwise", "tfl_imports")

# Valid variants that need the layer-graph comparison to decide by behaviour (axis -1 is
# the channel axis; a swapped concatenation is the same network; 'same' pooling on an even
# map is 'valid' pooling).
CONCAT_SWAPPED = ("merge = concatenate([up, contractive_input], axis=3)",
                  "merge = concatenate([contractive_input, up], axis=3)")
CONCAT_AXIS_MINUS_1 = ("merge = concatenate([up, contractive_input], axis=3)",
                       "merge = tf.keras.layers.Concatenate(axis=-1)([up, contractive_input])")
CONCAT_DEFAULT_AXIS = ("merge = concatenate([up, contractive_input], axis=3)",
                       "merge = tf.keras.layers.Concatenate()([up, contractive_input])")
POOL_SAME = ("next_layer = MaxPooling2D(pool_size=(2,2))(conv)",
             "next_layer = MaxPooling2D(pool_size=(2,2), padding='same')(conv)")

# ------------------------------------------------------------------ typical mistakes (one edit each)

SKIP_AFTER_POOLING = ("    skip_connection = conv\n", "    skip_connection = next_layer\n")
POOLING_IGNORED = ("""\
    if max_pooling:
        ### START CODE HERE
        next_layer = MaxPooling2D(pool_size=(2,2))(conv)
        ### END CODE HERE

    else:
        next_layer = conv
""", """\
    next_layer = MaxPooling2D(pool_size=(2,2))(conv)
""")
DROPOUT_IGNORED = ("        conv = Dropout(dropout_prob)(conv)\n", "        pass\n")
DROPOUT_HARD_CODED = ("        conv = Dropout(dropout_prob)(conv)\n", "        conv = Dropout(0.3)(conv)\n")
DROPOUT_FORCED = ("conv = Dropout(dropout_prob)(conv)", "conv = Dropout(dropout_prob)(conv, training=True)")
CONV_NO_HE_NORMAL = ("""\
                  padding='same',
                  kernel_initializer='he_normal')(conv)""", """\
                  padding='same')(conv)""")
UP_NO_HE_NORMAL = ("""\
                 padding='same',
                 kernel_initializer='he_normal')(conv)""", """\
                 padding='same')(conv)""")
TRANSPOSE_RELU = ("                 padding='same')(expansive_input)",
                  "                 padding='same',\n                 activation='relu')(expansive_input)")
TRANSPOSE_STRIDE_1 = ("strides=2,", "strides=1,")
CONCAT_UNUSED = ("kernel_initializer='he_normal')(merge)", "kernel_initializer='he_normal')(up)")
WRONG_PAIRING = ("ublock7 = upsampling_block(ublock6, cblock3[1],  n_filters*4)",
                 "ublock7 = upsampling_block(ublock6, cblock2[1],  n_filters*4)")
FINAL_KERNEL_3 = ("Conv2D(n_classes, 1, padding='same')", "Conv2D(n_classes, 3, padding='same')")
FINAL_SOFTMAX = ("Conv2D(n_classes, 1, padding='same')", "Conv2D(n_classes, 1, padding='same', activation='softmax')")
CLASSES_HARD_CODED = ("Conv2D(n_classes, 1, padding='same')", "Conv2D(23, 1, padding='same')")
FILTERS_HARD_CODED = ("""\
    cblock1 = conv_block(inputs, n_filters)
    # Chain the first element of the output of each block to be the input of the next conv_block.
    # Double the number of filters at each new step
    cblock2 = conv_block(cblock1[0], n_filters*2)
    cblock3 = conv_block(cblock2[0], n_filters*4)
    cblock4 = conv_block(cblock3[0], n_filters*8, dropout_prob=0.3) # Include a dropout_prob of 0.3 for this layer
    # Include a dropout_prob of 0.3 for this layer, and avoid the max_pooling layer
    cblock5 = conv_block(cblock4[0], n_filters*16, dropout_prob=0.3, max_pooling=False)
""", """\
    cblock1 = conv_block(inputs, 32)
    cblock2 = conv_block(cblock1[0], 64)
    cblock3 = conv_block(cblock2[0], 128)
    cblock4 = conv_block(cblock3[0], 256, dropout_prob=0.3)
    cblock5 = conv_block(cblock4[0], 512, dropout_prob=0.3, max_pooling=False)
""")


def course_notebook(variant: str = "course", *, conv: tuple[str, str] | list = (), up: tuple[str, str] | list = (),
                    unet: tuple[str, str] | list = ()) -> nbformat.NotebookNode:
    """The whole course notebook, in one of VARIANTS, with edits (old, new) applied to the
    three graded cells: `conv=SKIP_AFTER_POOLING`, or a list of such pairs."""
    code = {"conv": CONV_BLOCK, "up": UPSAMPLING_BLOCK, "unet": UNET_MODEL}
    for key, edits in (("conv", conv), ("up", up), ("unet", unet)):
        for old, new in ([edits] if edits and isinstance(edits[0], str) else edits):
            code[key] = _swap(code[key], old, new)
    imports = IMPORTS
    if variant == "no_headers":
        code = {k: _without_headers(v) for k, v in code.items()}
    elif variant == "spelled_otherwise":
        code["conv"], code["up"], code["unet"] = _spelled_otherwise(code["conv"], code["up"], code["unet"])
    elif variant == "tfl_imports":
        imports = _swap(IMPORTS, "from tensorflow.keras.layers import concatenate\n",
                        "from tensorflow.keras.layers import concatenate\nimport tensorflow.keras.layers as tfl\n")
        code = {k: _without_headers(_tfl_style(v)) for k, v in code.items()}
    elif variant != "course":
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    md = new_markdown_cell
    cells = [md("# Image Segmentation with U-Net\n\nWelcome to the final assignment of Week 3!"),
             md("## 1 - Packages"), new_code_cell(imports),
             md("## 2 - Load and Process the Data"), new_code_cell(DATA), new_code_cell(SHOW_IMAGE),
             new_code_cell(DATASET), new_code_cell(PREPROCESS),
             md("## 3 - U-Net\n\n<a name='ex-1'></a>\n### Exercise 1 - conv_block"), new_code_cell(code["conv"]),
             new_code_cell(CONV_BLOCK_TEST),
             md("<a name='ex-2'></a>\n### Exercise 2 - upsampling_block"), new_code_cell(code["up"]),
             new_code_cell(UPSAMPLING_BLOCK_TEST),
             md("<a name='ex-3'></a>\n### Exercise 3 - unet_model"), new_code_cell(code["unet"]),
             new_code_cell(UNET_TEST), new_code_cell(SUMMARY),
             md("## 4 - Train the Model"), new_code_cell(COMPILE), new_code_cell(DISPLAY), new_code_cell(TRAIN),
             md("## 5 - Plot Model Accuracy"), new_code_cell(PREDICT)]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def write(folder: Path, nb: nbformat.NotebookNode, name: str) -> Path:
    """Cells get ids from their position, so writing the same notebook again changes no
    byte (the samples and the master are committed)."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    path = Path(folder) / name
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------ the assignment's master

def _solution_cell(code: str, exercise: str):
    """A graded cell of the master: tagged with its exercise, the function's body after its
    docstring between solution markers, so the template (and a student kit) gets the
    course's signature and docstring with a stub, never the solution."""
    lines = code.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    body = next(i for i in range(start + 2, len(lines)) if lines[i].strip() == '"""') + 1  # after the docstring
    end = max(i for i, line in enumerate(lines) if line.strip()) + 1
    marked = lines[:body] + ["    ### BEGIN SOLUTION"] + lines[body:end] + ["    ### END SOLUTION"]
    return new_code_cell("\n".join(marked) + "\n", metadata={"tags": [exercise]})


def master_notebook() -> nbformat.NotebookNode:
    """The course notebook as the assignment's master (`source/dls_c4w3a2.ipynb`):
    validate-assignment grades it for full marks and makes the template from it, and a
    student kit is exported from it."""
    nb = course_notebook("course")
    graded = {CONV_BLOCK: "conv_block", UPSAMPLING_BLOCK: "upsampling_block", UNET_MODEL: "unet_model"}
    nb.cells = [_solution_cell(c.source, graded[c.source]) if c.source in graded else c for c in nb.cells]
    nb.metadata["grader"] = {"assignment": "dls_c4w3a2"}
    return nb


# ------------------------------------------------------------------ the assignment's samples

# name -> (variant, edits, expected score out of 30, what it shows); written to
# assignments/dls_c4w3a2/samples/ by `python tests/dls_c4w3a2_notebooks.py`, checked for
# drift by tests/test_dls_c4w3a2.py.
SAMPLES = {
    "correct_no_headers": ("no_headers", {}, 30,
                           "the course's code with the `# UNQ_Cn` / `# GRADED FUNCTION` headers lost. Should fail: "
                           "nothing."),
    "final_softmax": ("course", {"conv": CONV_NO_HE_NORMAL, "unet": FINAL_SOFTMAX}, 20,
                      "conv_block's second Conv2D without he_normal; unet_model's last Conv2D with a softmax. Should "
                      "fail: conv_block's initializer test (1 point) and unet_model's layer graph (its output tests "
                      "not run)."),
    "dropout_forced": ("course", {"conv": DROPOUT_FORCED, "up": UP_NO_HE_NORMAL}, 19,
                       "conv_block calls Dropout with training=True; upsampling_block's second Conv2D without "
                       "he_normal. Should fail: the inference outputs of conv_block and unet_model, and "
                       "upsampling_block's initializer test (1 point)."),
}


def sample_notebook(name: str) -> nbformat.NotebookNode:
    variant, edits, score, _ = SAMPLES[name]
    nb = course_notebook(variant, **edits)
    nb.metadata["grader"] = {"expected_score": score}
    return nb


def write_samples(folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Sample submissions for dls_c4w3a2", "",
             "Generated by `python tests/dls_c4w3a2_notebooks.py` from the course-layout notebooks the tests",
             "use; do not edit by hand. Each declares its score (out of 30) in its metadata, and",
             "`grader validate-assignment dls_c4w3a2` checks it.", ""]
    paths = []
    for name, (_, _, score, what) in SAMPLES.items():
        paths.append(write(folder, sample_notebook(name), f"{name}.ipynb"))
        lines.append(f"- `{name}.ipynb`: {what} Scores {score} / 30.")
    (folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


if __name__ == "__main__":
    assignment = Path(__file__).resolve().parent.parent / "assignments" / "dls_c4w3a2"
    (assignment / "source").mkdir(exist_ok=True)
    print(write(assignment / "source", master_notebook(), "dls_c4w3a2.ipynb"))
    for written in write_samples(assignment / "samples"):
        print(written)
