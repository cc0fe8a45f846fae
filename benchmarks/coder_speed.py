"""Range-coder benchmark (aecodec vs CompressAI vs constriction): see aecodec/bench/coder.py.

    python benchmarks/coder_speed.py --out benchmarks/results/coder/coder_speed.json
"""

import sys

from aecodec.bench.coder import main

if __name__ == "__main__":
    sys.exit(main())
