#!/usr/bin/env bash
# unpin-iowq.sh PID: let PID's io_uring workers (iou-wrk-*) run on every CPU; shards stay pinned.
for t in /proc/$1/task/*; do
  case $(cat "$t/comm") in iou-wrk-*) taskset -p -c "0-$(( $(nproc) - 1 ))" "${t##*/}" > /dev/null ;; esac
done
