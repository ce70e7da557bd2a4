import sys

from lvmbench.cli import main

sys.exit(main())
