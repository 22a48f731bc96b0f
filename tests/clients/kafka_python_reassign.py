"""Partition reassignments through kafka-python's admin client
(AlterPartitionReassignments / ListPartitionReassignments, sent to the
controller the Metadata response names).

Usage:
  kafka_python_reassign.py BOOTSTRAP alter TOPIC:PARTITION:B1,B2,...|TOPIC:PARTITION:none ...
      one line per partition answered: "TOPIC-PARTITION OK" or
      "TOPIC-PARTITION <kafka-python error class name>"
  kafka_python_reassign.py BOOTSTRAP list
      one line per partition being moved:
      "TOPIC-PARTITION replicas=1,2,3 adding=3 removing=1"
Exits 1 if the request itself failed.
"""
import sys

try:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
except ImportError as e:
    sys.exit(f"kafka-python is not installed ({e}): run tests/run")


def ids(v):
    return ",".join(str(b) for b in v)


def main():
    bootstrap, action, *rest = sys.argv[1:]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60000)
    try:
        if action == "alter":
            wanted = {}
            for arg in rest:
                topic, partition, replicas = arg.rsplit(":", 2)
                target = None if replicas == "none" else [int(b) for b in replicas.split(",")]
                wanted[TopicPartition(topic, int(partition))] = target
            results = admin.alter_partition_reassignments(wanted)
            for tp, err in sorted(results.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                print(f"{tp.topic}-{tp.partition} {'OK' if err is None else err.__name__}")
        elif action == "list":
            ongoing = admin.list_partition_reassignments()
            for tp, r in sorted(ongoing.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                print(f"{tp.topic}-{tp.partition} replicas={ids(r['replicas'])} "
                      f"adding={ids(r['adding_replicas'])} removing={ids(r['removing_replicas'])}")
        else:
            sys.exit(f"unknown action {action}")
    except Exception as e:  # the request as a whole failed
        sys.exit(f"{action} failed: {type(e).__name__}: {e}")
    finally:
        admin.close()


if __name__ == "__main__":
    main()
