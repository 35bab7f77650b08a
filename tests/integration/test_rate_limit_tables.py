"""The rate limiter on Azurite under concurrency: ETags keep every window within its limit, and a retry of
an execution reuses that execution's own grant."""
import threading
import time
from bisect import bisect_left

from shared.adapters.tables import limits as tables_limits
from shared.adapters.tables import from_clients
from shared.domain.rate_limit import HOLDER_CHARS, MAX_LIMIT, Rule

RULE = Rule("connector:erp", 25, 0.5)


def instance(table_client):
    """The coordination port as one app instance opens it: its own memory of the logs, the table shared."""
    return from_clients(table_client).coordination


def test_eight_threads_times_a_thousand_acquisitions_never_exceed_the_limit_in_any_window(table_client):
    granted: list[int] = []
    lock = threading.Lock()

    def worker():
        store = instance(table_client)  # one store each: eight instances, nothing shared but the table
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


DAY = 86400.0


def _row(table_client, key):
    return table_client.get_entity(tables_limits.PARTITION, tables_limits._row_key(key))


def test_a_retry_reuses_its_own_grant_from_another_instance_and_writes_nothing(table_client):
    entity = "entity:ap.x:invoiceId=I-1"
    now = int(time.time() * 1000)
    [first] = instance(table_client).acquire_many([[Rule(entity, 1, DAY, "a1b2c3d4e5")]], now)
    written = _row(table_client, entity)
    # A fresh store: the host that took the grant died before its execution commit, and another replays it.
    replay = instance(table_client)
    [again] = replay.acquire_many([[Rule(entity, 1, DAY, "a1b2c3d4e5")]], now + 3_600_000)
    [other] = replay.acquire_many([[Rule(entity, 1, DAY, "ffffffffff")]], now + 3_600_000)
    assert first.granted and again.granted and not other.granted
    after = _row(table_client, entity)
    assert after["log"] == written["log"] == str(now) and after["holders"] == "a1b2c3d4e5"
    assert after.metadata["etag"] == written.metadata["etag"]  # the reuse wrote nothing


def test_an_old_format_row_of_plain_stamps_is_read_and_still_counts(table_client):
    entity = "entity:ap.x:invoiceId=I-2"
    now = int(time.time() * 1000)
    table_client.create_entity({"PartitionKey": tables_limits.PARTITION, "RowKey": tables_limits._row_key(entity),
                                "rowType": "limit", "key": entity, "log": f"{now - 1000},{now - 500}"})
    store = instance(table_client)
    assert not store.acquire_many([[Rule(entity, 2, DAY, "a1b2c3d4e5")]], now)[0].granted
    assert store.acquire_many([[Rule(entity, 3, DAY, "a1b2c3d4e5")]], now)[0].granted
    row = _row(table_client, entity)
    assert row["log"] == f"{now - 1000},{now - 500},{now}" and row["holders"] == ",,a1b2c3d4e5"
    assert instance(table_client).acquire_many([[Rule(entity, 3, DAY, "a1b2c3d4e5")]], now + 10)[0].granted


def test_a_full_log_of_two_thousand_held_grants_fits_its_properties_and_still_tells_retries_apart(table_client):
    cap = "cap:ap.x"
    now = int(time.time() * 1000)
    tags = [f"{i:010x}" for i in range(MAX_LIMIT)]
    verdicts = tables_limits.Limits(table_client).acquire_many([[Rule(cap, MAX_LIMIT, DAY, t)] for t in tags], now)
    assert all(v.granted for v in verdicts)
    raw = _row(table_client, cap)  # as stored: text past 15,000 characters is split over properties
    assert max(len(v) for v in raw.values() if isinstance(v, str)) <= 32_768  # what one property holds
    [(log, _)] = tables_limits._read(table_client, [cap]).values()  # as read: joined again
    assert [g.holder for g in log] == tags and len(",".join(tags)) == MAX_LIMIT * (HOLDER_CHARS + 1) - 1
    store = instance(table_client)
    assert store.acquire_many([[Rule(cap, MAX_LIMIT, DAY, tags[1234])]], now + 1)[0].granted
    assert not store.acquire_many([[Rule(cap, MAX_LIMIT, DAY, "ffffffffff")]], now + 1)[0].granted


def test_eight_instances_retrying_their_own_executions_grant_each_entity_slot_once(table_client):
    rule = Rule("cap:ap.busy", 50, 60.0)
    outcomes: list[tuple[str, bool, bool]] = []  # (holder, first try granted, retry granted)
    lock = threading.Lock()

    def worker(w: int):
        store = instance(table_client)
        for i in range(40):
            held = Rule(rule.key, rule.limit, rule.window, f"{w:02x}{i:08x}")
            [first] = store.acquire_many([[held]], int(time.time() * 1000))
            [retry] = instance(table_client).acquire_many([[held]], int(time.time() * 1000))
            with lock:
                outcomes.append((held.holder, first.granted, retry.granted))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted = {h for h, first, _ in outcomes if first}
    assert len(granted) == rule.limit  # 320 executions asked, 50 slots: exactly 50 held, across instances
    assert all(retry == first for _, first, retry in outcomes)  # a retry gets what its execution got
    row = _row(table_client, rule.key)
    assert len(row["log"].split(",")) == rule.limit and set(row["holders"].split(",")) == granted
