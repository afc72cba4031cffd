"""torchvision's ImageNet-trained AlexNet, ported into the book's Keras model.

torchvision publishes AlexNet weights trained on ImageNet (56.5 % top-1,
79.1 % top-5) for its "one weird trick" variant, which
``build_alexnet("torchvision")`` rebuilds layer for layer. Porting them takes
three layout changes, and nothing else:

- convolution kernels: PyTorch stores ``(out, in, height, width)``, Keras
  ``(height, width, in, out)``;
- dense weights: PyTorch stores ``(out, in)``, Keras ``(in, out)``;
- fc6's inputs: PyTorch flattens pool5's 256×6×6 maps channels first
  (index ``c·36 + h·6 + w``), Keras flattens its 6×6×256 maps channels last
  (index ``h·1536 + w·256 + c``), so fc6's 9,216 input rows are permuted.

PyTorch is needed only to read the ``.pth`` file; :func:`from_torchvision`
also accepts NumPy arrays, and never imports torch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from alexnet_tut import downloads
from alexnet_tut.errors import AlexnetTutError, one_line
from alexnet_tut.files import file_digests
from alexnet_tut.models import build_alexnet

#: Where torchvision downloads ``AlexNet_Weights.IMAGENET1K_V1`` from.
TORCHVISION_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"

#: The ImageNet class index that ``keras.applications`` uses:
#: ``{"0": ["n01440764", "tench"], ...}``, in the same (sorted WordNet id)
#: order as torchvision's 1,000 outputs.
CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
#: The MD5 hash ``keras.applications.imagenet_utils`` pins for that file.
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"

#: torchvision's eval preprocessing: resize, centre crop, then normalise.
TORCHVISION_RESIZE = 256
TORCHVISION_CROP = 224
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)

# torchvision parameter prefix -> (Keras layer, kind). The indices are the
# positions in torchvision's ``features`` and ``classifier`` Sequentials
# (ReLU, pooling and dropout have no parameters and keep their slots).
TORCHVISION_LAYERS: dict[str, tuple[str, str]] = {
    "features.0": ("conv1", "conv"),
    "features.3": ("conv2", "conv"),
    "features.6": ("conv3", "conv"),
    "features.8": ("conv4", "conv"),
    "features.10": ("conv5", "conv"),
    "classifier.1": ("fc6", "fc6"),
    "classifier.4": ("fc7", "dense"),
    "classifier.6": ("fc8", "dense"),
}


def from_torchvision(state_dict: Mapping[str, Any]) -> keras.Model:
    """Build the ``"torchvision"`` AlexNet and load torchvision weights into it.

    Args:
        state_dict: torchvision's ``alexnet().state_dict()``, or the dict that
            ``torch.load`` reads from its weights file: the 16 parameters
            ``features.{0,3,6,8,10}.{weight,bias}`` and
            ``classifier.{1,4,6}.{weight,bias}``, as torch tensors or NumPy
            arrays. The number of classes is read from ``classifier.6``, so a
            fine-tuned model with another head also loads.

    Returns:
        A ``build_alexnet("torchvision")`` model whose logits equal PyTorch's
        for the same (channels-last) input, up to float rounding.

    Raises:
        AlexnetTutError: ``state_dict`` is not a dict of arrays, a key is
            missing or unexpected (a prefix such as ``module.`` is named), an
            array has the wrong shape (the message names the key, the expected
            and the actual shape), or the head has no classes.
    """
    if not isinstance(state_dict, Mapping):
        raise AlexnetTutError(
            f"state_dict must be a dict of arrays (torchvision's alexnet().state_dict()), "
            f"not a {type(state_dict).__name__}")
    arrays = {key: _to_numpy(key, value) for key, value in state_dict.items()}
    _check_keys(arrays)
    head = arrays["classifier.6.weight"]
    num_classes = head.shape[0] if head.ndim == 2 else 1000  # else _check_shape reports it
    if num_classes < 1:
        raise AlexnetTutError(
            f"state_dict['classifier.6.weight'] has shape {head.shape}: a head with no classes; "
            "pass the weights of a trained alexnet")
    model = build_alexnet("torchvision", num_classes=num_classes)
    for prefix, (layer_name, kind) in TORCHVISION_LAYERS.items():
        layer = model.get_layer(layer_name)
        kernel = _keras_kernel(arrays[f"{prefix}.weight"], kind)
        bias = arrays[f"{prefix}.bias"]
        _check_shape(f"{prefix}.weight", layer.kernel.shape, kernel.shape, kind)
        _check_shape(f"{prefix}.bias", layer.bias.shape, bias.shape, "bias")
        layer.set_weights([kernel, bias])
    return model


def _to_numpy(key: Any, value: Any) -> np.ndarray:
    """A torch tensor (duck-typed, so torch is never imported) or array as float32 NumPy."""
    try:
        if hasattr(value, "detach"):
            value = value.detach().cpu().float().numpy()
        if isinstance(value, (str, bytes)):
            raise TypeError("text")
        return np.asarray(value, dtype="float32")
    except (TypeError, ValueError, AttributeError, RuntimeError) as error:
        raise AlexnetTutError(
            f"state_dict[{key!r}] is a {type(value).__name__}, not an array of numbers; pass "
            "torchvision's alexnet state_dict") from error


def _common_prefix(keys: list[str]) -> str | None:
    """A prefix such as ``module.`` that every key has and torchvision's names do not."""
    if not keys:
        return None
    first = keys[0]
    for name in TORCHVISION_LAYERS:
        at = first.find(name + ".")
        if at > 0:
            prefix = first[:at]
            if all(k.startswith(prefix) for k in keys):
                return prefix
    return None


def _check_keys(arrays: Mapping[str, np.ndarray]) -> None:
    expected = {f"{p}.{w}" for p in TORCHVISION_LAYERS for w in ("weight", "bias")}
    if not all(isinstance(key, str) for key in arrays):
        raise AlexnetTutError("state_dict keys must be parameter names such as 'features.0.weight'")
    missing = sorted(expected - set(arrays))
    extra = sorted(set(arrays) - expected)
    prefix = _common_prefix(sorted(arrays)) if missing else None
    if prefix and expected <= {k[len(prefix):] for k in arrays}:
        raise AlexnetTutError(
            f"every key of state_dict starts with {prefix!r} (a model saved from a wrapper such "
            f"as DataParallel): strip it, e.g. {{k.removeprefix({prefix!r}): v for k, v in "
            "state_dict.items()}")
    if missing:
        raise AlexnetTutError(
            f"state_dict is missing {', '.join(missing)}; pass torchvision's "
            "alexnet state_dict (keys features.0.weight ... classifier.6.bias)"
        )
    if extra:
        raise AlexnetTutError(
            f"state_dict has keys torchvision's AlexNet does not have: {', '.join(extra)}; "
            "strip any prefix such as 'module.' and pass alexnet's own state_dict"
        )


def _keras_kernel(weight: np.ndarray, kind: str) -> np.ndarray:
    """A torchvision weight in Keras's layout (see the module docstring).

    A weight of the wrong rank comes back unchanged, for :func:`_check_shape`
    to report.
    """
    if kind == "conv":
        return weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight  # OIHW -> HWIO
    if weight.ndim != 2:
        return weight
    if kind == "fc6" and weight.shape == (4096, 256 * 6 * 6):
        # Columns are indexed (c, h, w) in PyTorch; Keras rows are (h, w, c).
        return weight.reshape(4096, 256, 6, 6).transpose(2, 3, 1, 0).reshape(-1, 4096)
    return weight.T  # (out, in) -> (in, out)


def _check_shape(key: str, keras_shape, got_keras: tuple, kind: str) -> None:
    keras_shape = tuple(keras_shape)
    if tuple(got_keras) == keras_shape:
        return
    expected = _torch_shape(keras_shape, kind)
    got = _torch_shape(tuple(got_keras), kind)
    raise AlexnetTutError(
        f"state_dict[{key!r}] has shape {got}, expected {expected}; "
        "pass the weights of torchvision's alexnet (64-192-384-256-256, 224 input)"
    )


def _torch_shape(keras_shape: tuple, kind: str) -> tuple:
    """Say shapes in PyTorch's layout, the one the user's state_dict is in."""
    if kind == "conv" and len(keras_shape) == 4:
        h, w, i, o = keras_shape
        return (o, i, h, w)
    if kind in ("dense", "fc6") and len(keras_shape) == 2:
        return keras_shape[::-1]
    return keras_shape


# ---------------------------------------------------------------- downloads


def fetch_torchvision_weights(
    cache_dir: str | None = None,
    *,
    url: str = TORCHVISION_URL,
    check_hash: bool = True,
) -> str:
    """Download torchvision's AlexNet weights file once and return its path.

    The file is cached by ``keras.utils.get_file`` in ``cache_dir/models``
    (``~/.keras/models`` by default), with a progress bar;
    ``ALEXNET_TUT_MIRROR`` replaces the server (`alexnet_tut.downloads`).

    The hash check follows torchvision's own convention (``torch.hub``'s
    ``check_hash``): the 8 hex digits after the last ``-`` in the file name
    (``7be5be79`` in ``alexnet-owt-7be5be79.pth``) are the first 8 digits of
    the file's SHA-256. torchvision publishes only this prefix, so that prefix
    is what is checked. A file downloaded now that fails the check is
    deleted; one that was already in the cache (maybe put there by hand) is
    left, and the message says to delete it.

    Raises:
        AlexnetTutError: the download failed (offline?) or the hash differs.
    """
    fname = os.path.basename(url)
    folder = _models_dir(cache_dir)
    existed = (folder / fname).exists()
    path = downloads.fetch(
        url, folder, fname,
        hint=f"connect to the internet, or put {fname} in {folder}, or set "
             f"{downloads.MIRROR_ENV} to a mirror that has it")
    if check_hash:
        _check_hash_prefix(str(path), fname, downloaded=not existed)
    return str(path)


def _check_hash_prefix(path: str, fname: str, downloaded: bool = True) -> None:
    match = re.search(r"-([0-9a-f]{8,})\.", fname)
    if match is None:
        raise AlexnetTutError(
            f"{fname} has no '-<sha256 prefix>.' in its name to check; "
            "pass check_hash=False to skip the check"
        )
    expected = match.group(1)
    actual = file_digests(path, ("sha256",))["sha256"]
    if not actual.startswith(expected) and downloads.trust_new_checksums():
        print(f"note: accepting {fname}, whose SHA-256 starts {actual[:len(expected)]}, not "
              f"{expected}, because {downloads.TRUST_ENV} is set")
    elif not actual.startswith(expected):
        raise AlexnetTutError(
            f"{fname} is corrupt or not the published file: its SHA-256 starts "
            f"{actual[:len(expected)]}, expected {expected}; " + _discard(path, downloaded))


def _discard(path: str | os.PathLike, downloaded: bool) -> str:
    """Delete a bad file the package downloaded now; keep one it found. Says which, for the message."""
    if downloaded:
        Path(path).unlink(missing_ok=True)
        return "it was deleted, run again to download it afresh"
    return f"it was already in the cache and was left as it is: delete {path} and run again"


def _models_dir(cache_dir: str | None) -> Path:
    """Where ``keras.utils.get_file(cache_subdir="models")`` keeps files: ``cache_dir``, ``$KERAS_HOME`` or ``~/.keras``."""
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base).expanduser() / "models"


def load_torchvision_alexnet(
    cache_dir: str | None = None,
    *,
    url: str = TORCHVISION_URL,
    check_hash: bool = True,
) -> keras.Model:
    """torchvision's ImageNet AlexNet as a Keras model (downloads 233 MB once).

    Fetches ``alexnet-owt-7be5be79.pth`` with :func:`fetch_torchvision_weights`,
    reads it with ``torch.load(..., weights_only=True)`` (which refuses to run
    pickled code, unlike a bare unpickle) and ports it with
    :func:`from_torchvision`. Feed it images prepared by
    :func:`preprocess_torchvision`. A file that ``torch.load`` refuses (not a
    weights file, or a pickle that would run code) is never loaded another
    way: it is deleted when it was downloaded now.

    Raises:
        AlexnetTutError: PyTorch is not installed, the download failed, the
            file's hash is wrong, or the file holds no plain weights.
    """
    try:
        import torch
    except ImportError as e:
        raise AlexnetTutError(
            "reading torchvision's weights file needs PyTorch: pip install torch "
            "(the CPU build is enough)"
        ) from e
    fname = os.path.basename(url)
    existed = (_models_dir(cache_dir) / fname).exists()
    path = fetch_torchvision_weights(cache_dir, url=url, check_hash=check_hash)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError...: never retried unsafely
        raise AlexnetTutError(
            f"{fname} is not a plain PyTorch weights file (torch.load with weights_only=True "
            f"refused it: {one_line(e).split('.')[0][:120]}); it may be damaged or may hold "
            "code, and is not loaded; " + _discard(path, not existed)) from e
    return from_torchvision(state_dict)


def imagenet_class_names(
    cache_dir: str | None = None,
    *,
    url: str = CLASS_INDEX_URL,
    file_hash: str | None = CLASS_INDEX_MD5,
) -> list[str]:
    """The 1,000 ImageNet class names, in the order of the model's outputs.

    Downloads (once) the class index that ``keras.applications`` uses, with
    its pinned MD5 hash (through ``ALEXNET_TUT_MIRROR`` when it is set).
    ``names[0] == "tench"``; the Imagenette classes' indices are in
    `alexnet_tut.data.IMAGENETTE_CLASSES`.

    Raises:
        AlexnetTutError: the download failed or the file is not the published one.
    """
    fname = os.path.basename(url)
    folder = _models_dir(cache_dir)
    existed = (folder / fname).exists()
    try:
        path = downloads.fetch(
            url, folder, fname, file_hash=file_hash,
            hint=f"connect to the internet, or put {fname} in {folder}")
    except AlexnetTutError as e:
        raise AlexnetTutError(f"could not fetch the ImageNet class names: {e}") from e
    try:
        with open(path) as f:
            index = json.load(f)
        return [index[str(i)][1] for i in range(len(index))]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise AlexnetTutError(
            f"{path} is not ImageNet's class index ({one_line(e)}); "
            + _discard(path, not existed)) from e


def top_predictions(
    logits: Any, class_names: Sequence[str], k: int = 5
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each image: ``[[(name, probability), ...], ...]``.

    ``logits`` has shape ``(images, classes)``: the model's ``fc8`` output.
    """
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    best = np.argsort(-probs, axis=-1)[:, :k]
    return [[(class_names[i], float(p[i])) for i in row] for p, row in zip(probs, best)]


# ------------------------------------------------------------ preprocessing


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size`` pixels, keeping the aspect ratio.

    Uses PIL's bilinear filter on 8-bit pixels, as torchvision's ``Resize``
    does on a PIL image; the longer side is ``int(size * long / short)``, as
    in torchvision. Accepts values in ``[0, 255]`` and returns ``uint8``.
    """
    pixels = np.clip(np.rint(np.asarray(image, dtype="float32")), 0, 255).astype("uint8")
    h, w = pixels.shape[:2]
    if min(h, w) == size:
        return pixels
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    return np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.BILINEAR))


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``×``size`` square (offsets rounded as torchvision's ``CenterCrop``)."""
    h, w = image.shape[:2]
    if min(h, w) < size:
        raise AlexnetTutError(
            f"image is {h}×{w}, smaller than the {size}×{size} crop; resize it first"
        )
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return image[top : top + size, left : left + size]


def preprocess_torchvision(images: Any) -> np.ndarray:
    """torchvision's ImageNet evaluation preprocessing, channels last.

    For each image: resize the shorter side to 256, take the central 224×224
    crop, scale to ``[0, 1]`` and normalise each channel with ImageNet's mean
    ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``; this is
    ``AlexNet_Weights.IMAGENET1K_V1.transforms()``.

    Args:
        images: one RGB image ``(height, width, 3)`` or several (a batch array
            or a list of images of any sizes), with values in ``[0, 255]``.

    Returns:
        float32 array ``(images, 224, 224, 3)``, ready for the pretrained model.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    mean = np.array(TORCHVISION_MEAN, dtype="float32")
    std = np.array(TORCHVISION_STD, dtype="float32")
    out = []
    for image in images:
        crop = centre_crop(resize_short_side(image, TORCHVISION_RESIZE), TORCHVISION_CROP)
        out.append((crop.astype("float32") / 255.0 - mean) / std)
    return np.stack(out)
