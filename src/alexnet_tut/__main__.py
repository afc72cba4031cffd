import sys

from alexnet_tut.cli import main

sys.exit(main())
