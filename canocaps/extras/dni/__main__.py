"""``python -m canocaps.extras.dni ...`` (same as ``canocaps extras dni ...``)."""
import sys

from canocaps.extras.dni.cli import main

sys.exit(main(sys.argv[1:]))
