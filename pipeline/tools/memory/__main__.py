"""``python -m pipeline.tools.memory``: see ``pipeline.tools.memory.cli``."""

import sys

from pipeline.tools.memory.cli import main

sys.exit(main())
