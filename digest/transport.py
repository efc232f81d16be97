"""Deliver a finished message: by SMTP (STARTTLS when offered, or SMTPS; login with the password from
TALENTWATCH_SMTP_PASSWORD), retrying temporary failures with backoff, or into the outbox folder when no SMTP URL is
set. Nothing here logs a password: targets are shown as scheme://host:port."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

RETRY_DELAYS = (2.0, 10.0, 30.0, 60.0)  # seconds before each retry of a temporary failure
TIMEOUT = 30.0  # seconds for each SMTP connection and command
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class DeliveryError(Exception):
    """The message was not delivered. ``temporary``: the server or network may accept it later."""

    def __init__(self, message: str, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str, password: str | None) -> SmtpTarget:
    """smtp://[user@]host[:port] (STARTTLS when offered) or smtps://...; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("expected smtp://[user@]host[:port] or smtps://[user@]host[:port]")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("the port is not a number") from None
    user = unquote(parts.username) if parts.username else None
    secret = password or (unquote(parts.password) if parts.password else None)
    return SmtpTarget(parts.scheme, parts.hostname, port, user, secret)


def send_smtp(target: SmtpTarget, message: bytes, sender: str, recipients: Sequence[str],
              delays: Sequence[float] = RETRY_DELAYS, sleep: Callable[[float], None] = time.sleep) -> str:
    """Send, retrying temporary failures (4xx answers, refused or dropped connections) after each of ``delays``;
    the DeliveryError it gives up with names the target."""
    if not recipients:
        raise DeliveryError("no recipients: set [digest] to", temporary=False)
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            refused = _send_once(target, message, sender, recipients)
        except DeliveryError as e:
            if not e.temporary or delay is None:
                raise DeliveryError(f"{target}: {e}", e.temporary) from e
            logger.warning("digest: %s: attempt %d failed (%s); retrying in %.0f s", target, attempt, e, delay)
            sleep(delay)
            continue
        if refused:
            logger.warning("digest: %s refused %s", target, ", ".join(f"{r} ({c})" for r, (c, _) in refused.items()))
        return str(target)
    raise AssertionError("unreachable")


def _send_once(target: SmtpTarget, message: bytes, sender: str, recipients: Sequence[str]) -> dict:
    try:
        with _connect(target) as smtp:
            return smtp.sendmail(sender, list(recipients), message)
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        raise DeliveryError(f"all recipients refused: {codes}", temporary=all(400 <= c < 500 for c in codes)) from e
    except smtplib.SMTPResponseException as e:
        detail = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise DeliveryError(f"{e.smtp_code} {detail}", temporary=400 <= e.smtp_code < 500) from e
    except (smtplib.SMTPServerDisconnected, OSError) as e:
        raise DeliveryError(f"{type(e).__name__}: {e}", temporary=True) from e
    except smtplib.SMTPException as e:
        raise DeliveryError(f"{type(e).__name__}: {e}", temporary=False) from e


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if target.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if target.scheme == "smtp" and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if target.user:
            if not target.password:
                raise DeliveryError(f"user {target.user!r} but TALENTWATCH_SMTP_PASSWORD is not set",
                                    temporary=False)
            _login(smtp, target)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _login(smtp: smtplib.SMTP, target: SmtpTarget) -> None:
    """AUTH PLAIN when offered (one round trip), else whatever smtplib picks; a refusal is not retried."""
    assert target.user and target.password
    try:
        if "PLAIN" in smtp.esmtp_features.get("auth", "").upper().split():
            smtp.user, smtp.password = target.user, target.password
            smtp.auth("PLAIN", smtp.auth_plain)
        else:
            smtp.login(target.user, target.password)
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"login as {target.user!r} refused: {e.smtp_code}", temporary=False) from None


def write_outbox(folder: Path, message: bytes, period: str, message_id: str) -> str:
    """Write the message as ``<period>-<hash of its Message-ID>.eml``, atomically: writing the same message again
    (a retry after a crash) replaces the same file instead of adding a second one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{period.replace('..', '_')}-{sha1(message_id.encode()).hexdigest()[:10]}.eml"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(message)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)
