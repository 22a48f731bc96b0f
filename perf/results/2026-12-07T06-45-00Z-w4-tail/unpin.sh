#!/usr/bin/env bash
# unpin.sh PID: let every thread of PID run on every CPU (undoes the shards' pinning).
for t in /proc/$1/task/*; do taskset -p -c "0-$(( $(nproc) - 1 ))" "${t##*/}" > /dev/null; done
echo "unpinned: $(grep -h Cpus_allowed_list /proc/$1/task/*/status | sort | uniq -c | tr '\n' ' ')"
