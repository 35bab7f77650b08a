"""The rate limiter on Azurite under concurrency: ETags keep every window within its limit."""
import threading
import time
from bisect import bisect_left

from shared.adapters.tables_store import TablesStore
from shared.domain.rate_limit import Rule

RULE = Rule("connector:erp", 25, 0.5)


def test_eight_threads_times_a_thousand_acquisitions_never_exceed_the_limit_in_any_window(table_client):
    granted: list[int] = []
    lock = threading.Lock()

    def worker():
        store = TablesStore(table_client)  # one store each: eight instances, nothing shared but the table
        for _ in range(1000):
            [verdict] = store.acquire_many([[RULE]], int(time.time() * 1000))
            if verdict.granted:
                with lock:
                    granted.append(verdict.granted_at)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted.sort()
    window = int(RULE.window * 1000)
    busiest = max(bisect_left(granted, t + window) - i for i, t in enumerate(granted))
    assert busiest <= RULE.limit
    assert len(granted) >= RULE.limit  # it does grant: the limit is reached, not just refused
