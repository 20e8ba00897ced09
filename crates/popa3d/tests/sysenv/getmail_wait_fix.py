#!/usr/bin/python3
"""Run Debian's getmail (/usr/bin/getmail, same arguments) with one race fixed.

    /usr/bin/python3 getmail_wait_fix.py --rcfile=... --getmaildir=...

getmail6 6.18.11 delivers every message in a forked child and waits for it on a
threading.Condition that its SIGCHLD handler notifies (getmailcore/baseclasses.py,
ForkingBase).  The handler is installed after fork() and the wait starts after a log
call, so a child that exits early enough is never noticed: getmail then sleeps for its
whole timeout (180 s) and fails with "waiting child pid N timed out", although the
message was delivered.  This happened about once in a few hundred deliveries here.

The fix below only changes how getmail waits for its own child: it also polls
waitpid(), then lets getmail's code check the status as before.  Nothing that touches
the POP3 session or the message bytes is changed.
"""
import os
import runpy
import signal
import sys
import time

import getmailcore.baseclasses as baseclasses

_original_wait = baseclasses.ForkingBase._wait_for_child


class _AlreadyExited:
    """Stands in for the Condition once the child's status is known."""

    def acquire(self):
        pass

    def release(self):
        pass

    def wait(self, timeout=None):
        return True


def _wait_for_child(self, childpid):
    while self._ForkingBase__child_status is None:
        try:
            pid, status = os.waitpid(childpid, os.WNOHANG)
        except ChildProcessError:
            # getmail's SIGCHLD handler reaped it meanwhile and set the status.
            time.sleep(0.01)
            continue
        if pid == childpid:
            signal.signal(signal.SIGCHLD, self._ForkingBase__orig_handler)
            self._ForkingBase__child_pid = pid
            self._ForkingBase__child_status = status
            break
        time.sleep(0.01)
    self._ForkingBase__child_exited = _AlreadyExited()
    return _original_wait(self, childpid)


baseclasses.ForkingBase._wait_for_child = _wait_for_child
sys.argv[0] = "/usr/bin/getmail"
runpy.run_path("/usr/bin/getmail", run_name="__main__")
