"""`python -m ganjax` runs the `ganjax` command."""

import sys

from ganjax.cli import main

sys.exit(main())
