"""alexnet-tut: the helpers behind the AlexNet book.

Modules, one job each: ``models`` (the three AlexNet variants and a per-layer
table), ``layers`` (local response normalisation), and ``cli`` (the
``alexnet-tut`` command).
"""

__version__ = "0.1.0"
