#!/usr/bin/env python3
"""Restart time with 1,000 partitions: for each oxka binary given, creates a 1,000-partition
topic, writes 10 records per partition, then restarts the broker (SIGTERM, start) three times
and prints the milliseconds from spawn to the first ApiVersions answer of each restart.
Binaries are run one after another; pass them twice to interleave.

    python3 benches/restart_bench.py target/release/oxka [other/oxka ...]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the Broker helper and the librdkafka-free admin/produce calls)


def main():
    for binary in sys.argv[1:]:
        b = load.Broker(os.path.abspath(binary))
        try:
            b.start()
            time.sleep(0.5)
            load.create_topics(b.bootstrap, [("p1000", 1000)], timeout=120)
            load.produce_each_partition(b.bootstrap, "p1000", 1000, 10)
            time.sleep(1.5)
            runs = []
            for _ in range(3):
                _, answer = b.restart()
                runs.append(round(answer * 1000))
                time.sleep(1.0)
            print(binary, "restart to first ApiVersions, ms:", runs, flush=True)
        finally:
            b.stop()


if __name__ == "__main__":
    main()
