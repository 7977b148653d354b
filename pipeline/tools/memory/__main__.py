"""``python -m pipeline.memory``: see ``pipeline.memory.cli``."""

import sys

from pipeline.memory.cli import main

sys.exit(main())
