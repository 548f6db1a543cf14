"""``python -m canocaps.extras.trajectories ...``"""
import sys

from canocaps.extras.trajectories.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
