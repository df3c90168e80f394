"""``python -m genrec`` runs the command line."""

import sys

from genrec.cli import main

sys.exit(main())
