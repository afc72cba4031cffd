"""alexnet-tut: the helpers behind the AlexNet book.

Modules, one job each:

- ``models``: the three AlexNet variants and a per-layer table;
- ``layers``: local response normalisation and PCA colour augmentation;
- ``data``: Imagenette, ImageNet-layout folders, the offline stand-in, tf.data pipelines;
- ``train``: the paper's training recipe, checkpoints and resume;
- ``pretrained``: torchvision's ImageNet weights ported to Keras, with its preprocessing;
- ``viz``: filters, feature maps, the explorer, fc7 neighbours;
- ``profiles``: how much a chapter trains (``ALEXNET_TUT_PROFILE``);
- ``cli``: the ``alexnet-tut`` command.
"""

__version__ = "0.1.0"
