"""``python -m benchmarks.targets``: also how the targets re-launch themselves as ``_<kind>`` children."""

import sys

from benchmarks.targets.cli import main

if __name__ == "__main__":
    sys.exit(main())
