import sys

from lvmbench.cli import console_main

sys.exit(console_main())
