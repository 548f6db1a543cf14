"""``python -m canocaps.extras.mechanics ...``."""
import sys

from canocaps.extras.mechanics.cli import main

sys.exit(main())
