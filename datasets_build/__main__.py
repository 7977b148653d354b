"""Entry point of ``python -m datasets_build`` (see ``cli``)."""

import sys

from .cli import main

sys.exit(main())
