"""``python -m edgefleet_orchestrator.demo`` (what ``make demo`` runs)."""

import sys

from edgefleet_orchestrator.demo.main import main

sys.exit(main())
