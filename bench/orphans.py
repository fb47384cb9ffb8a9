#!/usr/bin/python3
# The CMD of the zombie benchmark, the same for every init (PID 1).
#
#   orphans.py stream N OUT TIMEOUT_S
#     dash double-forks N short-lived orphans in a loop (`( : & )`: the
#     subshell exits at once, so each `:` is re-parented to PID 1), then this
#     script polls /proc until no process but PID 1 and itself is left.
#     Reports the time from the last fork to zero.
#   orphans.py burst N OUT TIMEOUT_S
#     two dash loops (one per core of the test machine) fork N children that
#     block reading a pipe, then exit: all N are orphans of PID 1. Closing the
#     pipe's write end makes all N exit at once; reports the time from that
#     release to zero.
#
# Also reports the CPU time PID 1 used (utime+stime of /proc/1/stat), over
# the storm and over the drain: what reaping costs, less noisy than wall time.
#
# Python forks slowly (a big address space: ~1 ms per fork here), so the
# forking is done by dash; Python only starts it, releases and polls /proc.
# Writes one JSON line to OUT; exit 0 when drained, 1 on timeout.
import json
import os
import subprocess
import sys
import time

mode, n, out, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
me = os.getpid()


def count():
    """Processes but PID 1 and me in this PID namespace, zombies included (cheap: no reads)."""
    return sum(1 for name in os.listdir('/proc') if name.isdigit()) - 2


def pid1_cpu_ms():
    with open('/proc/1/stat', 'rb') as f:
        s = f.read()
    fields = s[s.rindex(b')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf('SC_CLK_TCK')


def drain(t_from, pause):
    first = count()
    scans = 1
    left = first
    while left > 0 and time.monotonic() - t_from < timeout:
        if pause:
            time.sleep(pause)  # leave the CPU to the exiting processes and PID 1
        left = count()
        scans += 1
    return time.monotonic(), left == 0, first, scans


t0 = time.monotonic()
cpu0 = pid1_cpu_ms()
if mode == 'stream':
    loop = 'i=0; while [ $i -lt %d ]; do ( : & ); i=$((i+1)); done' % n
    subprocess.run(['/bin/sh', '-c', loop], check=True, timeout=timeout * 4)
    t_mark = time.monotonic()  # the last fork is done
    cpu_mark = pid1_cpu_ms()
elif mode == 'burst':
    r, w = os.pipe()
    if r != 3:
        os.dup2(r, 3)  # inheritable by default
        os.close(r)
    else:
        os.set_inheritable(3, True)
    # Each `read x <&3 &` is a dash subshell blocked on the pipe; this script
    # alone holds the write end. Each loop's dash exits after its last fork.
    loop = 'i=0; while [ $i -lt %d ]; do read x <&3 & i=$((i+1)); done'
    halves = [n // 2, n - n // 2]
    loops = [subprocess.Popen(['/bin/sh', '-c', loop % k], pass_fds=(3,)) for k in halves]
    for p in loops:
        if p.wait(timeout=timeout * 4) != 0:
            sys.exit('a forking loop failed')
    os.close(3)
    # Every child is forked and now an orphan of PID 1; let them all block.
    deadline = time.monotonic() + timeout
    while count() < n and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    t_mark = time.monotonic()
    cpu_mark = pid1_cpu_ms()
    os.close(w)  # EOF for all N at once: they exit together
else:
    sys.exit('usage: orphans.py stream|burst N OUT TIMEOUT_S')

t_zero, drained, first, scans = drain(t_mark, 0.001 if mode == 'burst' else 0)
cpu_zero = pid1_cpu_ms()
with open(out, 'w') as f:
    f.write(json.dumps({
        'mode': mode,
        'n': n,
        'setup_s': t_mark - t0,
        'drain_s': t_zero - t_mark,
        'drained': drained,
        'pid1_cpu_ms_setup': cpu_mark - cpu0,
        'pid1_cpu_ms_drain': cpu_zero - cpu_mark,
        'left_at_mark': first,
        'scans': scans,
    }) + '\n')
sys.exit(0 if drained else 1)
