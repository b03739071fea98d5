"""Started by binary_buildpack (the final buildpack); python and numpy come from the conda
buildpack, which ran before it as a supply buildpack."""
import os
import sys

import numpy as np

print("%s: numpy %s, mean %s" % (os.environ.get("REPORT_TITLE", "report"), np.__version__,
                                  np.array([3, 5, 7]).mean()), flush=True)
if "--once" not in sys.argv:
    import time
    while True:
        time.sleep(3600)
