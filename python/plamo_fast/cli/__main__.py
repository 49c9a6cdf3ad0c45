import sys

from plamo_fast.cli import main

sys.exit(main())
