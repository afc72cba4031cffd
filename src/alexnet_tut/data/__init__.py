"""Data for the book: Imagenette, any ImageNet-layout folder, and an offline stand-in.

Three sources, one pipeline. The modules, each with one job:

- `alexnet_tut.data.imagenette`: Imagenette's classes and archives, the verified download;
- `alexnet_tut.data.folders`: `scan` of an ImageNet-layout folder, and what it skips;
- `alexnet_tut.data.standin`: `write_standin`, the offline dataset of real photographs;
- `alexnet_tut.data.sources`: `resolve_source`, the book's data policy;
- `alexnet_tut.data.pipeline`: `load_datasets`, the paper's ``tf.data`` pipelines (§4.1).

The names below are the ones chapters and the command line use.
"""

from alexnet_tut.data.folders import SPLITS, check_image, format_scan, scan
from alexnet_tut.data.home import data_home
from alexnet_tut.data.imagenette import (
    IMAGENETTE_ARCHIVES, IMAGENETTE_CLASSES, IMAGENETTE_SIZES, download_imagenette,
    find_imagenette, safe_extract)
from alexnet_tut.data.pipeline import (
    ColorPCA, Datasets, color_statistics, decode_and_resize, load_datasets, ten_crop_batch,
    ten_crops)
from alexnet_tut.data.sources import DataSource, resolve_source
from alexnet_tut.data.standin import (
    STANDIN_DESCRIPTION, STANDIN_DIRNAME, STANDIN_PHOTOS, standin_photo, write_standin)

__all__ = [
    "SPLITS", "check_image", "format_scan", "scan", "data_home",
    "IMAGENETTE_ARCHIVES", "IMAGENETTE_CLASSES", "IMAGENETTE_SIZES", "download_imagenette",
    "find_imagenette", "safe_extract",
    "ColorPCA", "Datasets", "color_statistics", "decode_and_resize", "load_datasets",
    "ten_crop_batch", "ten_crops",
    "DataSource", "resolve_source",
    "STANDIN_DESCRIPTION", "STANDIN_DIRNAME", "STANDIN_PHOTOS", "standin_photo", "write_standin",
]
