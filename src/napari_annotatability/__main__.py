"""``python -m napari_annotatability``: the command line."""

import sys

from napari_annotatability.cli import main

sys.exit(main())
