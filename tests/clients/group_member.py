#!/usr/bin/env python3
"""A confluent-kafka (librdkafka) group member that the test kills with SIGKILL.

Usage: group_member.py HOST:PORT TOPIC GROUP STRATEGY SESSION_MS HEARTBEAT_MS
Subscribes and consumes slowly (batches of 50, 10 ms apart) forever. Prints
"A p,p,..." whenever its assignment changes and "R partition offset value" per
record, flushing before it commits synchronously, so every committed record
has been printed (at-least-once, as seen by the reader of stdout). Also
commits when partitions are revoked, so a rebalance loses nothing.
"""
import sys
import time

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")


def main():
    bs, topic, group, strategy, session_ms, heartbeat_ms = sys.argv[1:7]
    consumer = Consumer({
        "bootstrap.servers": bs, "group.id": group, "client.id": "doomed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": int(session_ms), "heartbeat.interval.ms": int(heartbeat_ms),
    })

    def commit():
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                print(f"commit failed: {e}", file=sys.stderr, flush=True)

    def on_revoke(_consumer, _partitions):
        commit()

    consumer.subscribe([topic], on_revoke=on_revoke)
    shown = None
    while True:
        msgs = consumer.consume(num_messages=50, timeout=0.2)
        assignment = sorted(tp.partition for tp in consumer.assignment())
        lines = []
        if assignment != shown:
            shown = assignment
            lines.append("A " + ",".join(map(str, assignment)))
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consume error: {m.error()}", file=sys.stderr, flush=True)
                continue
            lines.append(f"R {m.partition()} {m.offset()} {m.value().decode()}")
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        if msgs:
            commit()
            time.sleep(0.01)


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit("usage: group_member.py HOST:PORT TOPIC GROUP STRATEGY SESSION_MS HEARTBEAT_MS")
    main()
