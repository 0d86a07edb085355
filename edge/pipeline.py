"""`python edge/pipeline.py [run options]`: the pipeline's entry point, as the design names it.

The same as `emotion-edge run`. A thin shim over the CLI: the pipeline itself
is `edge.engine.Pipeline`, and nothing in the package imports this file, so
the CLI → pipeline dependency stays one-way.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `edge` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
