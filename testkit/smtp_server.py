"""An SMTP server for tests, built on aiosmtpd.

Started by `testkit::smtp::SmtpServer`. Listens on 127.0.0.1:PORT in one of
three modes (plain, STARTTLS, implicit TLS), optionally requires AUTH with
one user, refuses chosen recipients and messages containing chosen text,
and answers the first N messages with a temporary failure. Every accepted message is written, before the server
replies 250 to DATA, as one JSON file in the output directory:

    {"seq": 1, "connection": 1, "mail_from": "...", "rcpt_tos": [...],
     "data": "<the message as sent>", "headers": [["Subject", "decoded"], ...],
     "body": "<decoded text body, lines ending in \\n>", "content_type": "text/plain",
     "login": "user" | null, "tls": true}

`connection` numbers TCP connections in the order they were accepted, so a
test can tell whether its client reused one.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

CONNECTIONS = itertools.count(1)
MESSAGES = itertools.count(1)


class CountingSMTP(SMTP):
    """Numbers each TCP connection (a STARTTLS upgrade is the same one)."""

    connection_id = 0

    def connection_made(self, transport):
        if self._original_transport is None and self.transport is None:
            self.connection_id = next(CONNECTIONS)
        super().connection_made(transport)


class Handler:
    def __init__(self, args):
        self.out = args.out
        self.reject = set(a.lower() for a in args.reject_rcpt)
        self.tempfail = args.tempfail_data
        self.reject_content = [c.encode() for c in args.reject_content]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(c in envelope.content for c in self.reject_content):
            return "554 5.7.1 Message content rejected by policy"
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 Temporary local problem, try again"
        seq = next(MESSAGES)
        record = {
            "seq": seq,
            "connection": server.connection_id,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.content.decode("utf-8", "replace"),
            **_parsed(envelope.content),
            "login": _login(session),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
        }
        path = os.path.join(self.out, f"mail-{seq:06}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"


def _parsed(content):
    """Decoded headers and body, so tests need not parse MIME themselves."""
    try:
        msg = email.message_from_bytes(content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        return {
            "headers": [[k, str(v)] for k, v in msg.items()],
            "body": body.get_content().replace("\r\n", "\n") if body is not None else None,
            "content_type": msg.get_content_type(),
        }
    except Exception as e:  # a test asserting on a broken message sees why
        return {"headers": [], "body": None, "content_type": None, "parse_error": str(e)}


def _login(session):
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "implicit"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="USER:PASSWORD required before MAIL")
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--reject-content", action="append", default=[])
    p.add_argument("--tempfail-data", type=int, default=0)
    args = p.parse_args()

    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd itself answers 535 to a failure.
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # Plain mode allows AUTH without TLS, as a local relay would.
            auth_require_tls=args.mode == "starttls",
        )
    if args.mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)

    handler = Handler(args)

    def factory():
        return CountingSMTP(
            handler,
            hostname="testkit.smtp",
            ident="testkit aiosmtpd",
            enable_SMTPUTF8=True,
            **kwargs,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host="127.0.0.1",
            port=args.port,
            ssl=context if args.mode == "implicit" else None,
        )
    )
    print(f"listening on 127.0.0.1:{args.port} ({args.mode})", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
