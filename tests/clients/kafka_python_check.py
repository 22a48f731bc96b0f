#!/usr/bin/env python3
"""kafka-python (pure-Python protocol implementation) against sluice.

Usage: kafka_python_check.py HOST:PORT
Creates a 3-partition topic with the admin client, produces keyed and unkeyed
records with the producer's default settings (idempotent, acks=all; plain and gzip), reads them back with manual partition
assignment (no consumer group), checks counts/order, deletes the topic.
Exits non-zero with a message on any mismatch.
"""
import sys
import time
import uuid

try:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient
except ImportError as e:
    sys.exit(f"kafka-python is not installed ({e}): run tests/run")

PARTITIONS = 3
RECORDS = 3000


def fail(msg):
    print(f"kafka-python check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_until(what, cond, timeout=30):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def produce(bs, topic, compression, start):
    # kafka-python 3's defaults: the idempotent producer (InitProducerId,
    # sequence numbers) with acks=all. Only the codec is chosen here.
    producer = KafkaProducer(bootstrap_servers=bs, compression_type=compression)
    if not producer.config.get("enable_idempotence"):
        fail("kafka-python's default is no longer the idempotent producer; this check expects it")
    futures = []
    for i in range(start, start + RECORDS):
        if i % 2 == 0:  # keyed: the default partitioner hashes the key
            key, value = f"key-{i % 17}".encode(), f"keyed-{i}".encode()
            futures.append((i, key, value, producer.send(topic, key=key, value=value)))
        else:  # unkeyed: explicit partition so every partition gets some
            value = f"unkeyed-{i}".encode()
            futures.append((i, None, value, producer.send(topic, value=value, partition=i % PARTITIONS)))
    producer.flush(timeout=60)
    acked = []
    for i, key, value, f in futures:
        md = f.get(timeout=60)  # raises on a delivery error
        acked.append((md.partition, md.offset, i, key, value))
    producer.close()
    return acked


def main():
    bs = sys.argv[1]
    topic = f"kafka-python-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bs, client_id="kafka-python-check", request_timeout_ms=30000)
    admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                        timeout_ms=30000, wait_for_metadata=True)
    wait_until("topic in list_topics", lambda: topic in admin.list_topics())
    desc = admin.describe_topics([topic])
    if len(desc) != 1 or desc[0]["error_code"] != 0 or len(desc[0]["partitions"]) != PARTITIONS:
        fail(f"describe_topics: {desc}")

    acked = produce(bs, topic, None, 0) + produce(bs, topic, "gzip", RECORDS)
    by_key = {}
    for p, _, _, key, _ in acked:
        if key is not None and by_key.setdefault(key, p) != p:
            fail(f"key {key!r} landed in partitions {by_key[key]} and {p}")
    expected = {p: sorted(a for a in acked if a[0] == p) for p in range(PARTITIONS)}
    for p, recs in expected.items():
        if [r[1] for r in recs] != list(range(len(recs))):
            fail(f"partition {p}: acknowledged offsets are not 0..{len(recs) - 1}")
        if [r[2] for r in recs] != sorted(r[2] for r in recs):
            fail(f"partition {p}: offsets do not follow send order")

    consumer = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=30000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    for tp in tps:
        if ends[tp] != len(expected[tp.partition]):
            fail(f"partition {tp.partition}: end offset {ends[tp]}, acknowledged {len(expected[tp.partition])}")
    got = {p: [] for p in range(PARTITIONS)}
    deadline = time.time() + 60
    while any(len(got[p]) < len(expected[p]) for p in got):
        if time.time() > deadline:
            fail(f"consume timed out with {[len(v) for v in got.values()]} records")
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            got[tp.partition].extend((m.offset, m.key, m.value) for m in msgs)
    consumer.close()
    for p in range(PARTITIONS):
        want = [(o, k, v) for (_, o, _, k, v) in expected[p]]
        if got[p] != want:
            fail(f"partition {p}: consumed records differ from acknowledged ones "
                 f"(first difference at index {next(i for i, (a, b) in enumerate(zip(got[p], want + [None])) if a != b)})")

    admin.delete_topics([topic], timeout_ms=30000)
    wait_until("topic to disappear", lambda: topic not in admin.list_topics())
    admin.close()
    print(f"kafka-python OK: {len(acked)} records over {PARTITIONS} partitions")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kafka_python_check.py HOST:PORT")
    main()
