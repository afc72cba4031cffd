"""Porting torchvision's AlexNet weights, checked against PyTorch's own forward pass.

The oracle is a PyTorch AlexNet written in plain ``torch.nn`` with exactly
torchvision's architecture and parameter names (torchvision itself is not
needed). The online loader is exercised with local files served from
``file://`` URLs: the real 233 MB file is never downloaded here.
"""

import hashlib
import json
import os
import pathlib
import sys

import keras
import numpy as np
import pytest

from alexnet_tut import pretrained
from alexnet_tut.data import IMAGENETTE_CLASSES
from alexnet_tut.errors import AlexnetTutError

torch = pytest.importorskip("torch")
nn = torch.nn


class TorchvisionAlexNet(nn.Module):
    """torchvision.models.AlexNet, line for line (torchvision 0.2x)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@pytest.fixture(scope="module")
def torch_model():
    """Random weights, scaled (He init) so activations keep an O(1) size through
    all eight layers: then a wrong permutation cannot hide below the tolerance."""
    torch.manual_seed(0)
    model = TorchvisionAlexNet()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.uniform_(module.bias, -0.1, 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def images_and_logits(torch_model):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 224, 224, 3)).astype("float32")  # channels last
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    return images, logits


def keras_logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def test_state_dict_has_torchvision_names(torch_model):
    assert set(torch_model.state_dict()) == {
        f"{p}.{w}" for p in pretrained.TORCHVISION_LAYERS for w in ("weight", "bias")
    }


def test_ported_torch_tensors_give_pytorch_logits(torch_model, images_and_logits):
    images, expected = images_and_logits
    assert expected.std() > 0.1  # the comparison below is not between near-zeros
    model = pretrained.from_torchvision(torch_model.state_dict())
    got = keras_logits(model, images)
    assert got.shape == (2, 1000)
    assert np.max(np.abs(got - expected)) < 1e-4
    assert model.count_params() == 61_100_840


def test_ported_numpy_arrays_give_pytorch_logits(torch_model, images_and_logits):
    images, expected = images_and_logits
    arrays = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    got = keras_logits(pretrained.from_torchvision(arrays), images)
    assert np.max(np.abs(got - expected)) < 1e-4


def test_fc6_permutation_matters(torch_model, images_and_logits):
    """Without the channels-first -> channels-last permutation the logits differ."""
    images, expected = images_and_logits
    model = pretrained.from_torchvision(torch_model.state_dict())
    fc6 = torch_model.state_dict()["classifier.1.weight"].numpy()
    model.get_layer("fc6").kernel.assign(fc6.T)  # plain transpose, no permutation
    assert np.max(np.abs(keras_logits(model, images) - expected)) > 0.1


def small_state_dict(num_classes=1000):
    """Zero arrays with torchvision's shapes (cheap: no torch model needed)."""
    shapes = {
        "features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5),
        "features.6": (384, 192, 3, 3), "features.8": (256, 384, 3, 3),
        "features.10": (256, 256, 3, 3), "classifier.1": (4096, 9216),
        "classifier.4": (4096, 4096), "classifier.6": (num_classes, 4096),
    }
    out = {}
    for prefix, shape in shapes.items():
        out[f"{prefix}.weight"] = np.zeros(shape, "float32")
        out[f"{prefix}.bias"] = np.zeros(shape[0], "float32")
    return out


def test_head_size_is_read_from_the_state_dict():
    model = pretrained.from_torchvision(small_state_dict(num_classes=10))
    assert model.get_layer("fc8").units == 10


def test_missing_key_is_named():
    sd = small_state_dict()
    del sd["features.8.bias"]
    with pytest.raises(AlexnetTutError, match=r"missing features\.8\.bias"):
        pretrained.from_torchvision(sd)


def test_a_module_prefix_is_named_not_reported_as_16_missing_keys():
    """Issue 18, item 8: a state dict saved from DataParallel."""
    sd = {f"module.{k}": v for k, v in small_state_dict().items()}
    with pytest.raises(AlexnetTutError, match="every key of state_dict starts with 'module.'") as info:
        pretrained.from_torchvision(sd)
    assert "\n" not in str(info.value) and "missing" not in str(info.value)


@pytest.mark.parametrize("make, message", [
    (lambda sd: list(sd.values()), "must be a dict of arrays.*not a list"),
    (lambda sd: {**sd, "features.0.bias": "sixty-four"}, r"state_dict\['features.0.bias'\] is a str"),
    (lambda sd: {**sd, "features.0.bias": {"a": 1}}, r"state_dict\['features.0.bias'\] is a dict"),
    (lambda sd: small_state_dict(num_classes=0), "a head with no classes"),
])
def test_a_state_dict_of_the_wrong_kind_is_a_one_line_error(make, message):
    """Issue 18, item 8: raw ValueError, AttributeError or TypeError before."""
    with pytest.raises(AlexnetTutError, match=message) as info:
        pretrained.from_torchvision(make(small_state_dict()))
    assert "\n" not in str(info.value)


class _Evil:
    """Unpickling this runs code (it writes a file): what weights_only=True refuses."""

    def __init__(self, witness):
        self.witness = str(witness)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.witness),))


@pytest.mark.parametrize("kind", ["code", "random bytes", "a list"])
def test_a_file_torch_refuses_is_one_line_never_retried_unsafely_and_not_kept(tmp_path, kind):
    """Issue 18, item 8: the refusal suggested weights_only=False and kept the file cached."""
    witness = tmp_path / "the pickle ran"
    source = tmp_path / "bad.pth"
    if kind == "code":
        torch.save({"features.0.weight": _Evil(witness)}, source)
    elif kind == "random bytes":
        source.write_bytes(np.random.default_rng(0).bytes(5000))
    else:
        torch.save([torch.zeros(3)], source)
    name = f"alexnet-owt-{sha256(source)[:8]}.pth"
    url = serve(tmp_path, name, source.read_bytes())
    cache = tmp_path / "cache"
    with pytest.raises(AlexnetTutError) as info:
        pretrained.load_torchvision_alexnet(str(cache), url=url)
    message = str(info.value)
    assert "\n" not in message and "weights_only=False" not in message
    assert not witness.exists()
    if kind == "a list":
        assert "must be a dict of arrays" in message
    else:
        assert "not a plain PyTorch weights file" in message and "deleted" in message
        assert not (cache / "models" / name).exists()


def test_extra_key_is_named():
    sd = small_state_dict()
    sd["module.features.0.weight"] = sd.pop("features.0.weight")
    with pytest.raises(AlexnetTutError, match=r"missing features\.0\.weight"):
        pretrained.from_torchvision(sd)
    sd = small_state_dict()
    sd["features.1.weight"] = np.zeros(3)
    with pytest.raises(AlexnetTutError, match=r"do(es)? not have: features\.1\.weight"):
        pretrained.from_torchvision(sd)


@pytest.mark.parametrize(
    "key, shape, expected",
    [
        ("features.3.weight", (192, 64, 3, 3), "(192, 64, 5, 5)"),
        ("classifier.1.weight", (4096, 6400), "(4096, 9216)"),
        ("features.0.bias", (96,), "(64,)"),
        ("features.0.weight", (64, 363), "(64, 3, 11, 11)"),
    ],
)
def test_wrong_shape_names_key_expected_and_got(key, shape, expected):
    sd = small_state_dict()
    sd[key] = np.zeros(shape, "float32")
    with pytest.raises(AlexnetTutError) as info:
        pretrained.from_torchvision(sd)
    message = str(info.value)
    assert key in message and expected in message and str(shape) in message
    assert "\n" not in message


# ------------------------------------------------------------------ loader


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def serve(tmp_path, name, data: bytes):
    """Write a file and return its file:// URL (what get_file would download)."""
    source = tmp_path / "server" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    return source.as_uri()


def test_fetch_checks_the_sha256_prefix_and_caches(tmp_path):
    data = b"pretend weights"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    url = serve(tmp_path, f"alexnet-owt-{prefix}.pth", data)
    cache = tmp_path / "cache"
    path = pretrained.fetch_torchvision_weights(str(cache), url=url)
    assert pathlib.Path(path) == cache / "models" / f"alexnet-owt-{prefix}.pth"
    assert pathlib.Path(path).read_bytes() == data
    os.remove(url.removeprefix("file://"))  # the cached copy is used from now on
    assert pretrained.fetch_torchvision_weights(str(cache), url=url) == path


def test_fetch_deletes_a_file_with_the_wrong_hash(tmp_path):
    url = serve(tmp_path, "alexnet-owt-7be5be79.pth", b"not the real weights")
    cache = tmp_path / "cache"
    with pytest.raises(AlexnetTutError, match="SHA-256 starts .* expected 7be5be79") as info:
        pretrained.fetch_torchvision_weights(str(cache), url=url)
    assert "\n" not in str(info.value)
    assert not (cache / "models" / "alexnet-owt-7be5be79.pth").exists()


def test_fetch_offline_is_one_line(tmp_path):
    url = "http://127.0.0.1:9/alexnet-owt-7be5be79.pth"  # nothing listens on port 9
    with pytest.raises(AlexnetTutError, match="download of .* failed.*connect to the internet") as info:
        pretrained.fetch_torchvision_weights(str(tmp_path), url=url)
    assert "\n" not in str(info.value)


def test_load_end_to_end_from_a_served_file(tmp_path, torch_model, images_and_logits):
    images, expected = images_and_logits
    weights = tmp_path / "weights.pth"
    torch.save(torch_model.state_dict(), weights)
    name = f"alexnet-owt-{sha256(weights)[:8]}.pth"
    url = serve(tmp_path, name, weights.read_bytes())
    weights.unlink()
    model = pretrained.load_torchvision_alexnet(str(tmp_path / "cache"), url=url)
    assert np.max(np.abs(keras_logits(model, images) - expected)) < 1e-4


def test_load_end_to_end_through_the_mirror(tmp_path, monkeypatch, torch_model, images_and_logits):
    """Issue 12: the pretrained loader works through ALEXNET_TUT_MIRROR."""
    from datafiles import Server

    images, expected = images_and_logits
    weights = tmp_path / "weights.pth"
    torch.save(torch_model.state_dict(), weights)
    name = f"alexnet-owt-{sha256(weights)[:8]}.pth"
    server = Server({f"/models/{name}": weights.read_bytes()})
    monkeypatch.setenv("ALEXNET_TUT_MIRROR", server.base)
    try:
        model = pretrained.load_torchvision_alexnet(
            str(tmp_path / "cache"), url=f"https://download.pytorch.org/models/{name}")
    finally:
        server.close()
    assert server.paths == [f"/models/{name}"]
    assert np.max(np.abs(keras_logits(model, images) - expected)) < 1e-4


def test_load_without_torch_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(AlexnetTutError, match="pip install torch"):
        pretrained.load_torchvision_alexnet(str(tmp_path))


def test_class_names_from_a_served_index(tmp_path):
    index = {str(i): [f"n{i:08d}", f"class {i}"] for i in range(1000)}
    index["0"] = ["n01440764", "tench"]
    data = json.dumps(index).encode()
    url = serve(tmp_path, "imagenet_class_index.json", data)
    md5 = hashlib.md5(data).hexdigest()
    names = pretrained.imagenet_class_names(str(tmp_path / "cache"), url=url, file_hash=md5)
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "class 999"


def test_class_names_offline_is_one_line(tmp_path):
    with pytest.raises(AlexnetTutError, match="could not fetch the ImageNet class names"):
        pretrained.imagenet_class_names(
            str(tmp_path), url="http://127.0.0.1:9/imagenet_class_index.json"
        )


def test_imagenette_indices_are_sorted_wordnet_ids():
    """ImageNet's class order is the sorted WordNet ids, so Imagenette's sorted
    ids have increasing indices, starting with tench at 0."""
    wnids = sorted(IMAGENETTE_CLASSES)
    indices = [IMAGENETTE_CLASSES[w][1] for w in wnids]
    assert indices == sorted(indices) and indices[0] == 0 and len(set(indices)) == 10


def test_top_predictions():
    logits = np.log(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], "float32"))
    top = pretrained.top_predictions(logits, ["a", "b", "c"], k=2)
    assert [name for name, _ in top[0]] == ["b", "c"]
    assert [name for name, _ in top[1]] == ["a", "c"]
    assert top[0][0][1] == pytest.approx(0.6)


# ----------------------------------------------------------- preprocessing


def test_preprocess_by_hand():
    """A 256×300 image needs no resize: the result is the central crop, scaled
    and normalised, computed here by hand."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(256, 300, 3), dtype=np.uint8)
    got = pretrained.preprocess_torchvision(image)
    top, left = 16, 38  # round((256 - 224) / 2), round((300 - 224) / 2)
    crop = image[top : top + 224, left : left + 224].astype("float32") / 255
    expected = (crop - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert got.shape == (1, 224, 224, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], expected, atol=1e-6)


def test_preprocess_resizes_the_short_side_to_256():
    """A uniform grey 512×600 image: resize keeps it uniform; each channel
    becomes (128/255 - mean) / std."""
    assert pretrained.resize_short_side(np.zeros((512, 600, 3)), 256).shape == (256, 300, 3)
    assert pretrained.resize_short_side(np.zeros((600, 500, 3)), 256).shape == (307, 256, 3)
    grey = np.full((512, 600, 3), 128, np.uint8)
    small = np.full((300, 280, 3), 128, np.uint8)  # upscaled: different sizes in one call
    got = pretrained.preprocess_torchvision([grey, small])
    expected = (128 / 255 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225]
    assert got.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-5)
