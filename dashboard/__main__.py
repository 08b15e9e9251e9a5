"""``python -m dashboard``: serve the dashboard (see :mod:`dashboard.launch`)."""

import sys

from .launch import main

sys.exit(main())
