"""alexnet-tut: the helpers behind the AlexNet book.

``ARCHITECTURE.md`` at the top of the repository is the map: which module
holds what, and how data flows from a folder of images to a chapter.
"""

__version__ = "0.1.0"
