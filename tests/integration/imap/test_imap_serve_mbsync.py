"""mbsync (isync) syncing a Maildir with a real ``hayate serve`` over IMAPS, both ways: pull
the mailbox, push a message written locally, and carry flags in each direction."""

from __future__ import annotations

import imaplib
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.imap.conftest import PASSWORD, Served

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")


def write_config(served: Served, user: str, base: Path) -> Path:
    mail = base / "mail"
    mail.mkdir()
    rc = base / "mbsyncrc"
    rc.write_text(f"""IMAPAccount hayate
Host localhost
Port {served.imaps}
User {user}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {served.cafile}

IMAPStore remote
Account hayate

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return rc


def mbsync(rc: Path) -> str:
    result = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, timeout=60)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    return output


def maildir_files(folder: Path) -> list[Path]:
    return sorted([*folder.joinpath("cur").iterdir(), *folder.joinpath("new").iterdir()])


def imaps(served: Served, user: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("localhost", served.imaps, ssl_context=served.tls_context(),
                               timeout=10)
    client.login(user, PASSWORD)
    return client


def test_mbsync_syncs_both_ways(served: Served, account: Callable[[], str],
                                tmp_path: Path) -> None:
    user = account()
    for n in range(5):
        served.send(user, f"sync {n}", f"body number {n}")
    server = imaps(served, user)
    deadline = time.monotonic() + 10
    while b"MESSAGES 5" not in server.status("INBOX", "(MESSAGES)")[1][0]:
        assert time.monotonic() < deadline, "mail was not delivered"
        time.sleep(0.1)
    server.select("INBOX")
    server.store("2", "+FLAGS", "(\\Flagged)")

    rc = write_config(served, user, tmp_path)
    mbsync(rc)
    inbox = tmp_path / "mail" / "INBOX"
    pulled = maildir_files(inbox)
    assert len(pulled) == 5
    bodies = sorted(path.read_bytes() for path in pulled)
    assert all(b"Subject: sync " in body for body in bodies)
    flagged = [p for p in pulled if b"Subject: sync 1" in p.read_bytes()]
    assert flagged and flagged[0].name.split(":2,")[1].count("F") == 1
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (tmp_path / "mail" / name / "cur").is_dir(), name

    # A message written locally is pushed up; a flag set locally propagates.
    local = inbox / "new" / f"{int(time.time())}.local1.hayate-test"
    local.write_bytes(b"From: me@hayate.test\r\nSubject: written locally\r\n\r\nhi\r\n")
    first = next(p for p in pulled if b"Subject: sync 0" in p.read_bytes())
    first.rename(first.with_name(first.name.split(":2,")[0] + ":2,S"))
    mbsync(rc)
    server.noop()
    typ, data = server.uid("SEARCH", "SUBJECT", '"written locally"')
    assert typ == "OK" and data[0], "the local message was not uploaded"
    typ, data = server.search(None, "SEEN")
    seen_seq = data[0].split()
    assert seen_seq, "the local \\Seen flag did not reach the server"
    typ, data = server.fetch(seen_seq[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    parts = [part[1] for part in data if isinstance(part, tuple)]
    assert parts == [b"Subject: sync 0\r\n\r\n"], data

    # Deleting on the server reaches the Maildir on the next run.
    server.store("3", "+FLAGS", "(\\Deleted)")
    server.expunge()
    mbsync(rc)
    assert len(maildir_files(inbox)) == 5
    server.logout()
