import sys

from aecodec.cli import main

sys.exit(main())
