#!/usr/bin/env bash
# Reserves 2 MiB huge pages for hotwire's UMEM and socket buffers, or puts the previous count back.
#
#   nic/hugepages.sh reserve N     raise vm.nr_hugepages by N (prints the previous value)
#   nic/hugepages.sh restore PREV  set vm.nr_hugepages back to PREV
#   nic/hugepages.sh need FRAMES FRAME_SIZE CONNECTIONS BUFFER   pages one stack needs
#
# A UMEM of 4096 frames of 4 KiB is 16 MiB = 8 pages; 64 connections with 256 KiB receive and send
# buffers are 32 MiB = 16 pages. hotwire falls back to ordinary pages (and says so in
# `hotwire check`) when too few are free. On a production host reserve them at boot instead
# (kernel command line: hugepagesz=2M hugepages=N) so they are never fragmented away.
set -Eeuo pipefail
F=/proc/sys/vm/nr_hugepages
case ${1:-} in
reserve)
    prev=$(cat $F)
    echo $((prev + ${2:?N})) >$F
    echo "$prev"
    ;;
restore)
    echo "${2:?PREV}" >$F
    ;;
need)
    umem=$(( ${2:?FRAMES} * ${3:?FRAME_SIZE} ))
    bufs=$(( ${4:?CONNECTIONS} * ${5:?BUFFER} * 2 ))
    page=$((2 << 20))
    echo $(( (umem + page - 1) / page + (bufs + page - 1) / page ))
    ;;
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
