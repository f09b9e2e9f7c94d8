"""``python -m harness`` runs the mobilebench command line."""

import sys

from harness.cli import main

sys.exit(main())
