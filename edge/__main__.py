"""`python -m edge ...`: the same as the `emotion-edge` command."""

import sys

from edge.cli import main

sys.exit(main())
