"""``python -m pipeline.training.report RUN``: see ``pipeline.training.report``."""

import sys

from pipeline.training.report.markdown import main

sys.exit(main())
