"""Outgoing mail: SMTP when configured, otherwise .eml files in instance/outbox/.

The outbox lets every flow that mails a link (verification, password reset) work on a fresh
machine; tests and the browser test read links from it.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app

from marketplace.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class OutboxMailer:
    """Writes each message to a file; the log names the file, never the body (it holds links)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        (self.directory / name).write_bytes(bytes(message))
        log.info("mail %r written to outbox file %s", message["Subject"], name)


class SmtpMailer:
    def __init__(
        self, host: str, port: int, username: str | None, password: str | None, starttls: bool
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password, self.starttls = username, password, starttls

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
        log.info("mail %r sent by SMTP", message["Subject"])


def init_app(app: Flask) -> None:
    mailer: Mailer
    if app.config.get("SMTP_HOST"):
        mailer = SmtpMailer(
            str(app.config["SMTP_HOST"]),
            int(app.config["SMTP_PORT"]),
            app.config.get("SMTP_USERNAME"),
            app.config.get("SMTP_PASSWORD"),
            bool(app.config.get("SMTP_STARTTLS")),
        )
    else:
        mailer = OutboxMailer(Path(str(app.config["OUTBOX_DIR"])))
    app.extensions["marketplace.mailer"] = mailer


def send(message: Message) -> None:
    email = EmailMessage()
    email["From"] = str(current_app.config["MAIL_FROM"])
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Message-ID"] = f"<{uuid.uuid4().hex}@marketplace>"
    email.set_content(message.text)
    mailer: Mailer = current_app.extensions["marketplace.mailer"]
    mailer.send(email)
