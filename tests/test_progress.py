"""Progress: a bar with total, percentage and ETA on a terminal; plain lines in a log."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from conftest import REPO

SCRIPT = """
import time
from pipeline.plumbing.progress import Progress
progress = Progress("stage", "articles", total=1000, every_seconds=0)
for _ in range(4):
    time.sleep(0.12)  # tqdm redraws at most every 0.1 s
    progress.advance(100)
progress.done("summary")
"""


def test_a_log_gets_plain_lines_with_total_percentage_and_time_left():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("[stage] 100 of 1,000 articles (10%), ") and lines[0].endswith(" left")
    assert lines[3].startswith("[stage] 400 of 1,000 articles (40%), ")
    assert lines[4].startswith("[stage] 400 articles in ") and lines[4].endswith("; summary")
    assert "\x1b" not in result.stderr and "\r" not in result.stderr


def test_a_terminal_gets_a_bar_with_total_percentage_and_eta():
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 rows, 120 columns
    process = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=REPO, stderr=terminal, stdout=subprocess.DEVNULL,
)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        output += chunk
    process.wait()
    text = output.decode()
    assert "\r" in text  # redrawn in place
    assert "400/1000" in text and "40%" in text and "<" in text  # count/total, percentage, elapsed<ETA
    assert text.rstrip().splitlines()[-1].startswith("[stage] 400 articles in ")
