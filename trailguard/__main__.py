import sys

from trailguard.cli import main

if __name__ == "__main__":  # decode worker processes import this module too
    sys.exit(main())
