"""``python -m wfnb``: the command line (see ``wfnb --help``)."""

from wfnb.cli import main

raise SystemExit(main())
