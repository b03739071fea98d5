"""A batch worker: summarises a batch of measurements with pandas, then waits for the next."""
import sys
import time

import pandas as pd


def summarise(batch):
    frame = pd.DataFrame({"latency_ms": batch})
    return "processed %d records, mean latency %.1f ms" % (len(frame), frame["latency_ms"].mean())


if __name__ == "__main__":
    batches = [[12, 15, 11, 40], [9, 10, 13, 12], [30, 22, 18, 26]]
    for number, batch in enumerate(batches, 1):
        print("batch %d: %s" % (number, summarise(batch)), flush=True)
        if "--once" not in sys.argv:
            time.sleep(60)
    if "--once" not in sys.argv:
        while True:
            time.sleep(3600)
