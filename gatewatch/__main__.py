"""``python -m gatewatch`` is the same as the ``gatewatch`` command."""

import sys

from gatewatch.cli import main

sys.exit(main())
