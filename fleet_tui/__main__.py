"""`python -m fleet_tui …` is `fleet-tui …`."""

import sys

from fleet_tui.cli import main

sys.exit(main())
