"""Command line: `python -m service [serve|migrate|reconcile]`."""

from service.cli import main

raise SystemExit(main())
