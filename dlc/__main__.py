"""``python -m dlc``: the command line."""

import sys

from dlc.cli import main

sys.exit(main())
