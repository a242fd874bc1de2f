"""mutt reading and moving messages on a real ``hayate serve`` over IMAPS, driven through a
private tmux server (its own socket, killed at the end) so that it runs unattended; every
wait on the screen is bounded."""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.imap.conftest import PASSWORD, Served

pytestmark = pytest.mark.skipif(
    shutil.which("mutt") is None or shutil.which("tmux") is None,
    reason="mutt and tmux are needed",
)


class Tmux:
    """One detached tmux session on a private server socket."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              timeout=10)

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        result = self.run("new-session", "-d", "-s", "mutt", "-x", "160", "-y", "40",
                          f"env {exports} {command}")
        assert result.returncode == 0, result.stderr

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "mutt", *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "mutt").stdout.decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{screen}")

    def alive(self) -> bool:
        return self.run("has-session", "-t", "mutt").returncode == 0

    def kill(self) -> None:
        self.run("kill-server")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    try:
        yield session
    finally:
        session.kill()


def muttrc(served: Served, user: str, base: Path) -> Path:
    rc = base / "muttrc"
    rc.write_text(f"""set folder="imaps://{user.replace('@', '%40')}@localhost:{served.imaps}/"
set spoolfile="+INBOX"
set imap_user="{user}"
set imap_pass="{PASSWORD}"
set ssl_ca_certificates_file="{served.cafile}"
set ssl_force_tls=yes
set certificate_file="{base / 'certificates'}"
set header_cache=""
set message_cachedir=""
set record=""
set postponed="+Drafts"
set mail_check=1
set timeout=1
set confirmappend=no
set confirmcreate=no
set delete=yes
set move=no
set mark_old=no
set pager_stop=yes
set sort=date-sent
set index_format="%4C %-12.12F %s"
set wait_key=no
""")
    return rc


def imaps(served: Served, user: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("localhost", served.imaps, ssl_context=served.tls_context(),
                               timeout=10)
    client.login(user, PASSWORD)
    return client


def test_mutt_reads_and_moves_messages(served: Served, account: Callable[[], str],
                                       tmp_path: Path, tmux: Tmux) -> None:
    user = account()
    for n in range(3):
        served.send(user, f"mutt subject {n}", f"text of message {n}")
    checker = imaps(served, user)
    deadline = time.monotonic() + 10
    while b"MESSAGES 3" not in checker.status("INBOX", "(MESSAGES)")[1][0]:
        assert time.monotonic() < deadline, "mail was not delivered"
        time.sleep(0.1)

    rc = muttrc(served, user, tmp_path)
    env = {"HOME": str(tmp_path), "TERM": "xterm", "LANG": "C.UTF-8",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tmux.start(f"mutt -n -F {rc}", env)
    screen = tmux.wait_for("mutt subject 2")
    assert "mutt subject 0" in screen and "mutt subject 1" in screen

    # Read the first message: the pager shows its text and the server marks it \Seen.
    tmux.keys("1", "Enter")  # jump to message 1
    tmux.keys("Enter")  # open it
    tmux.wait_for("text of message 0")
    tmux.keys("q")
    tmux.wait_for("mutt subject 1")

    # Save (move) message 2 into Archive, then sync: COPY/MOVE + EXPUNGE on the server.
    tmux.keys("2", "Enter")
    tmux.keys("s")
    tmux.wait_for("Save to mailbox")
    tmux.keys("C-u", "=Archive", "Enter")
    time.sleep(0.5)
    tmux.keys("$")
    tmux.wait_for("mutt subject 2")
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
        if "Exit Mutt?" in tmux.screen() or "Quit" in tmux.screen():
            tmux.keys("y")

    checker.select("Archive", readonly=True)
    assert subjects(checker, "ALL") == [b"Subject: mutt subject 1"], "not saved to Archive"
    checker.select("INBOX", readonly=True)
    left = subjects(checker, "ALL")
    assert len(left) == 2 and b"Subject: mutt subject 1" not in left, left
    assert b"Subject: mutt subject 0" in subjects(checker, "SEEN")
    checker.logout()


def subjects(client: imaplib.IMAP4, criterion: str) -> list[bytes]:
    """The Subject lines of the messages of the selected folder matching ``criterion``."""
    numbers = client.search(None, criterion)[1][0]
    assert isinstance(numbers, bytes)
    found: list[bytes] = []
    for number in numbers.split():
        for part in client.fetch(number.decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]:
            if isinstance(part, tuple):
                found.append(part[1].strip())
    return found
