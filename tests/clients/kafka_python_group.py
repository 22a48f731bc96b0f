#!/usr/bin/env python3
"""kafka-python group consumers against sluice.

Usage: kafka_python_group.py HOST:PORT
Two KafkaConsumers (one thread each) join one group on a 3-partition topic; once they split the
partitions, 3000 records are produced and must be consumed exactly once across
the two (commits on every batch and on revocation). The admin client must see
the group Stable with 2 members while they run, and after they close, Empty
with offsets at the log end. The last line reports the committed offsets:
COMMITTED group topic p:o,...  Exits non-zero with a message on any mismatch.
"""
import sys
import threading
import time
import uuid

try:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import CommitFailedError, RebalanceInProgressError
except ImportError as e:
    sys.exit(f"kafka-python is not installed ({e}): run tests/run")

PARTITIONS = 3
RECORDS = 3000


def fail(msg):
    print(f"kafka-python group check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


commit_failures = []
# Set to end the consumer threads (also when a wait fails).
stop = threading.Event()


def wait_until(check, what, timeout, interval=0.1):
    """Calls check() every `interval` s until it returns (True, state); after
    `timeout` s stops the consumer threads and fails with `what` and the last
    state it returned."""
    deadline = time.time() + timeout
    while True:
        done, state = check()
        if done:
            return state
        if time.time() > deadline:
            stop.set()
            fail(f"{what}: {state}")
        time.sleep(interval)


def commit(consumer):
    # A commit racing a rebalance fails; its records may then come again
    # (at-least-once), so duplicates are only accepted after such a failure.
    try:
        consumer.commit()
    except (CommitFailedError, RebalanceInProgressError) as e:
        commit_failures.append(repr(e))
        print(f"commit failed: {e!r}", file=sys.stderr)


def main():
    bs = sys.argv[1]
    topic = f"kp-group-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-g"
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])

    consumers = []
    for i in range(2):
        c = KafkaConsumer(bootstrap_servers=bs, group_id=group, client_id=f"kp-{i}", enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=500,
                          request_timeout_ms=30000)
        # Know the partitions before subscribing: a leader that assigned with
        # older metadata rejoins at once, and each extra rebalance opens
        # kafka-python's window for losing its heartbeat task (its heartbeat
        # loop can disable itself just after a rejoin re-enabled it).
        def known_partitions(c=c):
            parts = c.partitions_for_topic(topic)
            return parts == set(range(PARTITIONS)), parts

        wait_until(known_partitions, f"metadata never showed {PARTITIONS} partitions of {topic}", 30, 0.05)
        c.subscribe([topic])
        consumers.append(c)

    seen = []  # (consumer index, partition, offset, value)
    lock = threading.Lock()

    # One thread per consumer, as applications run them: a KafkaConsumer
    # rejoins a rebalance only from its own poll(), so polling both from one
    # thread could leave one waiting in JoinGroup for the other.
    def run(i, c):
        while not stop.is_set():
            # A long poll timeout: kafka-python 3.0.12 can wedge a consumer
            # whose poll() times out while its JoinGroup is still waiting
            # for the other member (its I/O thread then stops heartbeating).
            for tp, msgs in c.poll(timeout_ms=5000).items():
                with lock:
                    seen.extend((i, tp.partition, m.offset, m.value) for m in msgs)
            commit(c)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(consumers)]
    for t in threads:
        t.start()

    def split():
        parts = [{tp.partition for tp in c.assignment()} for c in consumers]
        return all(parts) and sorted(p for s in parts for p in s) == list(range(PARTITIONS)), parts

    wait_until(split, "the two consumers never split the partitions", 60)

    def stable():
        desc = admin.describe_groups([group])[group]
        return not desc["error"] and desc["group_state"] == "Stable" and len(desc["members"]) == 2, desc

    wait_until(stable, "describe_groups while consuming", 30, 0.2)

    producer = KafkaProducer(bootstrap_servers=bs, linger_ms=5)
    for i in range(RECORDS):
        producer.send(topic, value=f"v-{i}".encode(), partition=i % PARTITIONS)
    producer.flush(timeout=60)
    producer.close()

    def consumed():
        with lock:
            n = len(seen)
        return n >= RECORDS, f"{n} of {RECORDS}"

    wait_until(consumed, "consumed", 60)

    log_end = {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}

    def committed():
        offsets = admin.list_group_offsets(group)[group]
        ours = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}
        return ours == log_end, ours

    # Keep polling (and committing) until the commits reach the log end.
    wait_until(committed, "committed offsets", 30, 0.2)
    stop.set()
    for t in threads:
        t.join()
    values = sorted(v for (_, _, _, v) in seen)
    expected = sorted(f"v-{i}".encode() for i in range(RECORDS))
    if sorted(set(values)) != expected:
        fail(f"{len(set(values))} distinct records of {RECORDS} consumed")
    if len(values) != RECORDS and not commit_failures:
        fail(f"{len(values)} records consumed for {RECORDS} without a failed commit: not exactly once")
    consumers_used = {i for (i, _, _, _) in seen}
    if consumers_used != {0, 1}:
        fail(f"records went to consumers {consumers_used} only: the group did not share the work")
    for c in consumers:
        c.close()

    desc = admin.describe_groups([group])[group]
    if desc["error"] or desc["group_state"] != "Empty" or desc["members"]:
        fail(f"describe_groups after close: {desc}")
    at_end, ours = committed()
    if not at_end:
        fail(f"committed offsets after close: {ours}")
    admin.close()
    print(f"kafka-python group OK: {RECORDS} records once across 2 members")
    print(f"COMMITTED {group} {topic} " + ",".join(f"{p}:{o}" for p, o in sorted(ours.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kafka_python_group.py HOST:PORT")
    main()
