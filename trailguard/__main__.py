"""`python -m trailguard` is the `trailguard` command."""

import sys

from trailguard.cli import main

sys.exit(main())
