"""Consumer-group figures with a real client (confluent-kafka / librdkafka):
join-to-first-record time of fresh groups (classic and KIP-848), and
OffsetCommit throughput and latency. Run through perf/groups."""
import sys, threading, time, uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from hdrh.histogram import HdrHistogram

bs = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else ""
JOINS = 15
COMMIT_SECONDS = 5
COMMITTERS = 4
PARTITIONS = 6


def pct(h, scale=1000.0):
    return " ".join(
        f"p{p}={h.get_value_at_percentile(p) / scale:.2f}" for p in (50, 99, 99.9)
    ) + f" max={h.get_max_value() / scale:.2f}"


topic = f"groups-{uuid.uuid4().hex[:8]}"
admin = AdminClient({"bootstrap.servers": bs})
for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": bs})
for i in range(600):
    p.produce(topic, value=b"x" * 100, partition=i % PARTITIONS)
p.flush()

def join_ms(protocol):
    conf = {
        "bootstrap.servers": bs,
        "group.id": f"join-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    t0 = time.perf_counter()
    c = Consumer(conf)
    c.subscribe([topic])
    while True:
        m = c.poll(0.05)
        if m is not None and not m.error():
            break
        if time.perf_counter() - t0 > 60:
            raise SystemExit("no record within 60 s")
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


# The very first group also creates __consumer_offsets (50 partitions).
print(f"{label} first group on a fresh broker (creates __consumer_offsets): {join_ms('classic') * 1000:.0f} ms")
for protocol in ("classic", "consumer"):
    h = HdrHistogram(1, 60_000_000, 3)  # microseconds
    for _ in range(JOINS):
        h.record_value(int(join_ms(protocol) * 1e6))
    print(f"{label} join-to-first-record ({protocol}, {JOINS} fresh groups, ms): {pct(h)}")

# Synchronous commits: each waits for its fsync'ed write.
h = HdrHistogram(1, 60_000_000, 3)
lock = threading.Lock()
count = [0]


def committer():
    c = Consumer({"bootstrap.servers": bs, "group.id": f"commit-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    local = HdrHistogram(1, 60_000_000, 3)
    n, end = 0, time.perf_counter() + COMMIT_SECONDS
    while time.perf_counter() < end:
        n += 1
        tps = [TopicPartition(topic, i, n) for i in range(PARTITIONS)]
        t0 = time.perf_counter()
        c.commit(offsets=tps, asynchronous=False)
        local.record_value(int((time.perf_counter() - t0) * 1e6))
    c.close()
    with lock:
        h.add(local)
        count[0] += n


threads = [threading.Thread(target=committer) for _ in range(COMMITTERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(
    f"{label} OffsetCommit ({COMMITTERS} committers, {PARTITIONS} partitions each, sync): "
    f"{count[0] / COMMIT_SECONDS:.0f} commits/s, latency ms {pct(h)}"
)
