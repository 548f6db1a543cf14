"""``python -m canocaps`` = the ``canocaps`` console script."""
import sys

from canocaps.cli import main

sys.exit(main())
