"""Looking inside AlexNet: first-layer filters, feature maps, an explorer, fc7 neighbours.

The modules: `filters` (conv1, Figure 3: pictures, colour, spectra, norms),
`maps` (feature maps and receptive fields), `explorer` (the ipywidgets
explorer), `results` (neighbours, curves, confusion matrix), `diagrams` (the
towers and a ring all-reduce, drawn from the model), `figure` (what every
figure shares). Chapters use the names below.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` with a white
background and a title. The figure is not left open in pyplot, so a notebook
shows it exactly once: as the cell's last expression, or with ``display(fig)``.
Nothing here needs a screen (the Agg backend is enough) and nothing calls
TensorFlow directly (only ``keras.ops`` and NumPy), so the helpers run under
any Keras backend.

Images passed to a model are model-ready arrays, ``(height, width, 3)`` at
the model's input size. For display they are contrast-stretched to ``[0, 1]``
(``uint8`` images are simply divided by 255), so normalised inputs such as
:func:`alexnet_tut.pretrained.preprocess_torchvision`'s still look like photos.
"""

from alexnet_tut.viz.diagrams import plot_parallelism
from alexnet_tut.viz.explorer import FeatureMapExplorer
from alexnet_tut.viz.filters import (
    SPECTRUM_BIN_WIDTH, conv1_kernels, dead_filters, filter_colourfulness, filter_norms,
    filter_spectrum, is_two_tower, plot_filter_changes, plot_filter_spectra,
    plot_filter_statistics, plot_filters, tower_blocks, white_noise_spectrum)
from alexnet_tut.viz.maps import (
    feature_maps, fit_to_model, layer_activations, plot_feature_maps, plot_strongest_channels,
    receptive_fields, spatial_layer_names, strongest_channels)
from alexnet_tut.viz.results import (
    confusion_matrix, first_per_class, nearest_neighbours, plot_confusion_matrix,
    plot_neighbours, plot_training_curves, same_class_baselines, same_class_share)

__all__ = [
    "FeatureMapExplorer",
    # diagrams
    "plot_parallelism",
    # filters (conv1, Figure 3)
    "SPECTRUM_BIN_WIDTH", "conv1_kernels", "dead_filters", "filter_colourfulness", "filter_norms",
    "filter_spectrum", "is_two_tower", "plot_filter_changes", "plot_filter_spectra",
    "plot_filter_statistics", "plot_filters", "tower_blocks", "white_noise_spectrum",
    # feature maps
    "feature_maps", "fit_to_model", "layer_activations", "plot_feature_maps",
    "plot_strongest_channels", "receptive_fields", "spatial_layer_names", "strongest_channels",
    # results: neighbours (Figure 4), curves, confusion matrix
    "confusion_matrix", "first_per_class", "nearest_neighbours", "plot_confusion_matrix",
    "plot_neighbours", "plot_training_curves", "same_class_baselines", "same_class_share",
]
