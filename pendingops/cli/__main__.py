import sys

from pendingops.cli import main

sys.exit(main())
