"""alexnet-tut: the helpers behind the AlexNet book.

``ARCHITECTURE.md`` at the top of the repository is the map: which module
holds what, and how data flows from a folder of images to a chapter.

Importing the package chooses TensorFlow's CPU kernels before TensorFlow
starts (`alexnet_tut.devices.choose_cpu_kernels`), so import it before
``keras`` or ``tensorflow``.
"""

from alexnet_tut.devices import choose_cpu_kernels

__version__ = "0.1.0"

choose_cpu_kernels()
