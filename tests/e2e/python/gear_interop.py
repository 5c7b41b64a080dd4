#!/usr/bin/env python3
"""Interop check: the Python `gear` library (pip package `gear`) against a Gearman server.

Usage: gear_interop.py PORT [SCENARIO ...]

Runs a gear.Worker in a thread and a gear.Client in the main thread, both on 127.0.0.1:PORT.
Without scenario names it runs them all. Exits 0 when every scenario passed, 1 with a message on
the first failure, 2 on usage errors.
"""

import logging
import queue
import signal
import sys
import threading
import time

try:
    import gear
except ImportError:
    print("the Python package `gear` is missing: python3 -m pip install gear", file=sys.stderr)
    sys.exit(1)

HOST = "127.0.0.1"
# Every wait is bounded; the alarm is the last resort if gear itself blocks.
WAIT = 10
signal.alarm(50)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_for(cond, what, limit=WAIT):
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise Failure("timed out waiting for " + what)
        time.sleep(0.02)


class InteropWorker(threading.Thread):
    """Serves every scenario's function; background workloads are reported on a queue."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.worker = gear.Worker("interop-worker")
        self.worker.addServer(HOST, port)
        self.worker.waitForServer(timeout=WAIT)
        for name in ("reverse", "chatty", "bg", "unique", "throws"):
            self.worker.registerFunction(name)
        self.background = queue.Queue()
        self.uniques = queue.Queue()
        self.errors = []

    def run(self):
        while True:
            try:
                job = self.worker.getJob()
            except gear.InterruptedError:
                return
            try:
                self.handle(job)
            except Exception as e:  # reported by the main thread
                self.errors.append(repr(e))

    def handle(self, job):
        if job.name == "reverse":
            job.sendWorkComplete(job.arguments[::-1])
        elif job.name == "chatty":
            job.sendWorkStatus(1, 4)
            job.sendWorkData(b"part1")
            job.sendWorkWarning(b"careful")
            job.sendWorkComplete(b"done")
        elif job.name == "bg":
            self.background.put(job.arguments)
            job.sendWorkComplete(b"")
        elif job.name == "unique":
            self.uniques.put(job.unique)
            job.sendWorkComplete(b"")
        elif job.name == "throws":
            job.sendWorkException(b"oops")

    def stop(self):
        self.worker.shutdown()


def new_client(port, name, exceptions=False):
    client = gear.Client(name)
    client.addServer(HOST, port)
    client.waitForServer(timeout=WAIT)
    if exceptions:
        check(client.setOption("exceptions", timeout=WAIT), "exceptions option accepted")
    return client


def run_job(client, job, **kwargs):
    client.submitJob(job, timeout=WAIT, **kwargs)
    check(job.handle, "JOB_CREATED for " + job.name)
    wait_for(lambda: job.complete, job.name + " to complete")
    return job


def scenario_reverse(port, worker):
    client = new_client(port, "interop-client")
    job = run_job(client, gear.Job("reverse", b"hello"))
    check(not job.failure, "reverse succeeded")
    check(job.data == [b"olleh"], "reverse result, got %r" % (job.data,))
    # Each precedence goes through the same function.
    for precedence in (gear.PRECEDENCE_HIGH, gear.PRECEDENCE_LOW):
        job = run_job(client, gear.Job("reverse", b"abc"), precedence=precedence)
        check(job.data == [b"cba"], "reverse result, got %r" % (job.data,))
    client.shutdown()


def scenario_status_and_data(port, worker):
    client = new_client(port, "interop-client")
    job = run_job(client, gear.Job("chatty", b"x"))
    check(not job.failure, "chatty succeeded")
    check((job.numerator, job.denominator) == (b"1", b"4"),
          "WORK_STATUS 1/4, got %r/%r" % (job.numerator, job.denominator))
    check(job.warning, "WORK_WARNING seen")
    check(job.data == [b"part1", b"careful", b"done"], "data chunks, got %r" % (job.data,))
    client.shutdown()


def scenario_background(port, worker):
    client = new_client(port, "interop-client")
    job = gear.Job("bg", b"bgdata")
    client.submitJob(job, background=True, timeout=WAIT)
    check(job.handle, "JOB_CREATED for the background job")
    try:
        got = worker.background.get(timeout=WAIT)
    except queue.Empty:
        raise Failure("the worker never received the background job")
    check(got == b"bgdata", "background workload, got %r" % (got,))
    client.shutdown()


def scenario_unique(port, worker):
    client = new_client(port, "interop-client")
    run_job(client, gear.Job("unique", b"x", unique="my-unique-key"))
    got = worker.uniques.get(timeout=WAIT)
    check(got in (b"my-unique-key", "my-unique-key"), "unique passed through, got %r" % (got,))
    client.shutdown()


def scenario_exception(port, worker):
    client = new_client(port, "interop-exceptions", exceptions=True)
    job = run_job(client, gear.Job("throws", b"x"))
    check(job.failure, "exception marks failure")
    check(job.exception == b"oops", "exception data, got %r" % (job.exception,))
    client.shutdown()


def scenario_exception_as_fail(port, worker):
    # Without the option the client must get a WORK_FAIL it can match to its job handle.
    client = new_client(port, "interop-plain")
    job = run_job(client, gear.Job("throws", b"x"))
    check(job.failure, "WORK_FAIL marks failure")
    check(job.exception is None, "no exception data without the option")
    client.shutdown()


SCENARIOS = {
    "reverse": scenario_reverse,
    "status_and_data": scenario_status_and_data,
    "background": scenario_background,
    "unique": scenario_unique,
    "exception": scenario_exception,
    "exception_as_fail": scenario_exception_as_fail,
}
DEFAULT = list(SCENARIOS)


def main(argv):
    if len(argv) < 2 or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    port = int(argv[1])
    names = argv[2:] or DEFAULT
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print("unknown scenario(s): %s" % ", ".join(unknown), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    worker = InteropWorker(port)
    worker.start()
    try:
        for name in names:
            SCENARIOS[name](port, worker)
            check(not worker.errors, "worker errors: %s" % worker.errors)
            print("ok", name)
    except Failure as e:
        print("FAILED %s: %s" % (name, e), file=sys.stderr)
        return 1
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
