"""curl as an IMAP client of a real ``hayate serve``: imaps:// and imap:// (STARTTLS) URLs
fetching a message by UID, listing folders, appending (upload) and the refusal of a wrong
password."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.imap.conftest import PASSWORD, Served

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(served: Served, user: str, url: str, *extra: str, password: str = PASSWORD
         ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", "--cacert", served.cafile,
         "--user", f"{user}:{password}", *extra, url],
        capture_output=True, timeout=30,
    )


def wait_for_message(served: Served, user: str, url: str) -> bytes:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = curl(served, user, url)
        if result.returncode == 0 and result.stdout:
            return result.stdout
        time.sleep(0.2)
    raise AssertionError(f"no message at {url}: {result.stderr.decode()}")


def test_curl_fetches_by_uid_over_imaps_and_starttls(
    served: Served, account: Callable[[], str]
) -> None:
    user = account()
    served.send(user, "for curl", "Body read by curl.")
    over_tls = wait_for_message(served, user, f"imaps://localhost:{served.imaps}/INBOX;UID=1")
    assert b"Subject: for curl" in over_tls and b"Body read by curl." in over_tls
    starttls = curl(served, user, f"imap://localhost:{served.imap}/INBOX;UID=1", "--ssl-reqd")
    assert starttls.returncode == 0, starttls.stderr
    assert starttls.stdout == over_tls
    section = curl(served, user,
                   f"imaps://localhost:{served.imaps}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert section.returncode == 0, section.stderr
    assert section.stdout.strip() == b"Subject: for curl"


def test_curl_lists_and_appends(served: Served, account: Callable[[], str], tmp_path: Path
                                ) -> None:
    user = account()
    listing = curl(served, user, f"imaps://localhost:{served.imaps}/")
    assert listing.returncode == 0, listing.stderr
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent' in listing.stdout
    draft = tmp_path / "draft.eml"
    draft.write_bytes(b"From: me@hayate.test\r\nSubject: uploaded\r\n\r\nvia curl\r\n")
    upload = curl(served, user, f"imaps://localhost:{served.imaps}/Drafts",
                  "--upload-file", str(draft))
    assert upload.returncode == 0, upload.stderr
    fetched = curl(served, user, f"imaps://localhost:{served.imaps}/Drafts;UID=1")
    assert fetched.stdout == draft.read_bytes()
    examined = curl(served, user, f"imaps://localhost:{served.imaps}/Drafts",
                    "--request", "EXAMINE Drafts")
    assert b"* 1 EXISTS" in examined.stdout


def test_curl_with_a_wrong_password_fails(served: Served, account: Callable[[], str]) -> None:
    user = account()
    result = curl(served, user, f"imaps://localhost:{served.imaps}/INBOX;UID=1",
                  password="wrong")
    assert result.returncode == 67  # CURLE_LOGIN_DENIED
