"""Runs one command as a whole process tree and measures it: wall seconds, CPU seconds (user +
sys) and peak resident memory, each of the command and every process it starts.

The harness runs one measured command at a time, so every process below the harness during a
run belongs to that run: the tree polled for memory is the harness's descendants.
"""
import ctypes
import os
import resource
import tempfile
import threading
import time
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
# Polls start 1 ms apart and slow down to 20 ms: a run of a few milliseconds is still seen,
# and a long one costs the machine little. A process that exits between two polls may have
# peaked after the last: the peaks of runs under ~50 ms are approximate.
FIRST_POLL_SECONDS, POLL_SECONDS = 0.001, 0.02


@dataclass
class Sample:
    wall: float        # spawn until the command and all its descendants have exited
    cpu: float         # user + sys of the command and all its descendants
    peak_bytes: int    # the highest sum of their resident set sizes (see tree_peak)
    exit_code: int
    stdout: str
    stderr: str


def become_subreaper():
    """Make orphaned descendants ours rather than init's. PySpark's JVM outlives the Python
    driver that started it; re-parented here, it is waited for by us, so its CPU time lands in
    RUSAGE_CHILDREN and its memory stays in the tree we poll."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _parents():
    """{pid: ppid} of every process, from /proc/PID/stat."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:  # it exited between the listing and the read
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        parents[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return parents


def descendants(root):
    children = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, pending = [], list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def memory(pid):
    """(resident bytes now, the process's own high-water mark) from /proc/PID/status; zeros for
    a process that has exited (a zombie has no memory left)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in values:
                    values[key] = int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


def tree_peak(root):
    """The summed resident set size of every descendant of root (pages shared by several
    processes count once per process), or, if higher, the largest high-water mark of one of
    them: that catches a spike shorter than the polling interval. (Not wait4's ru_maxrss: the
    kernel gives a child spawned by vfork, as posix_spawn does, the harness's own high-water
    mark, from the memory they shared until exec.)"""
    sizes = [memory(pid) for pid in descendants(root)]
    return max([sum(rss for rss, _ in sizes)] + [hwm for _, hwm in sizes])


class _Reaper(threading.Thread):
    """Waits for every child of the harness (the command, then any orphan re-parented to us)
    and notes when the last one exited: a blocking wait, so the wall time is exact rather than
    rounded to the memory-polling interval."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.exit_code, self.finished = pid, None, None

    def run(self):
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == self.pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
        self.finished = time.perf_counter()


def _cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv, env):
    """Runs argv to completion (in the current directory) and measures it. stdin is /dev/null;
    stdout and stderr are kept in files (a pipe could fill and block the command while nobody
    reads it)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        cpu_before = _cpu_of_children()
        started = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ])
        reaper = _Reaper(pid)
        reaper.start()
        peak, interval = 0, FIRST_POLL_SECONDS
        while reaper.is_alive():
            peak = max(peak, tree_peak(os.getpid()))
            reaper.join(interval)
            interval = min(2 * interval, POLL_SECONDS)
        cpu = _cpu_of_children() - cpu_before
        out.seek(0)
        err.seek(0)
        return Sample(wall=reaper.finished - started, cpu=cpu, peak_bytes=peak,
                      exit_code=reaper.exit_code, stdout=out.read(), stderr=err.read())
