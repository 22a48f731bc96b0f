#!/usr/bin/env python3
"""confluent-kafka group consumers with the KIP-848 protocol against sluice.

Usage: confluent_group848.py HOST:PORT
Two consumers with group.protocol=consumer (ConsumerGroupHeartbeat, server-side
assignment) join one group on a 3-partition topic; once they split the
partitions, 3000 records are produced and must be consumed exactly once
across the two. After they close, the committed offsets must be at the log
end. Last line: COMMITTED group topic p:o,...  Exits non-zero on mismatch.
"""
import sys
import time
import uuid

try:
    from confluent_kafka import ConsumerGroupTopicPartitions, Consumer, KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")

PARTITIONS = 3
RECORDS = 3000


def fail(msg):
    print(f"confluent-kafka KIP-848 check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def commit(consumer):
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as e:
        if e.args[0].code() != KafkaError._NO_OFFSET:  # nothing consumed yet is fine
            raise


def main():
    bs = sys.argv[1]
    topic = f"kip848-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-g"
    admin = AdminClient({"bootstrap.servers": bs})
    for f in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        f.result(timeout=60)

    consumers = []
    for i in range(2):
        c = Consumer({"bootstrap.servers": bs, "group.id": group, "client.id": f"kip848-{i}",
                      "group.protocol": "consumer", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "enable.partition.eof": False})
        c.subscribe([topic], on_revoke=lambda cons, parts: parts and commit(cons))
        consumers.append(c)

    seen = []

    def poll_all():
        for i, c in enumerate(consumers):
            msgs = c.consume(num_messages=500, timeout=0.1)
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        fail(f"consume error: {m.error()}")
                    continue
                seen.append((i, m.partition(), m.offset(), m.value()))
            if msgs:
                commit(c)

    deadline = time.time() + 60
    while True:
        poll_all()
        parts = [{tp.partition for tp in c.assignment()} for c in consumers]
        if all(parts) and sorted(p for s in parts for p in s) == list(range(PARTITIONS)):
            break
        if time.time() > deadline:
            fail(f"the two consumers never split the partitions: {parts}")

    producer = Producer({"bootstrap.servers": bs, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v-{i}".encode(), partition=i % PARTITIONS)
        producer.poll(0)
    if producer.flush(60) != 0:
        fail("produce flush timed out")

    deadline = time.time() + 60
    while len(seen) < RECORDS:
        if time.time() > deadline:
            fail(f"consumed {len(seen)} of {RECORDS}")
        poll_all()
    for _ in range(5):
        poll_all()
    values = sorted(v for (_, _, _, v) in seen)
    if values != sorted(f"v-{i}".encode() for i in range(RECORDS)):
        fail(f"{len(seen)} records consumed, {len(set(values))} distinct: not exactly once")
    for c in consumers:
        c.close()

    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=30)
    ours = {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == topic}
    if ours != {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}:
        fail(f"committed offsets {ours}")
    print(f"confluent-kafka KIP-848 OK: {RECORDS} records once across 2 members")
    print(f"COMMITTED {group} {topic} " + ",".join(f"{p}:{o}" for p, o in sorted(ours.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: confluent_group848.py HOST:PORT")
    main()
