"""A real SMTP server for the tests (aiosmtpd): prints READY <port> when it listens
and MESSAGE <json> for every message it accepts. Modes: plain, starttls (offered,
not required), implicit (TLS from the first byte). Recipients starting with
"reject" get 550, with "later" get 451."""

import json
import socket
import ssl
import sys

from aiosmtpd.controller import Controller


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user here"
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        print("MESSAGE " + json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf8", "replace"),
            # STARTTLS sets session.ssl; implicit TLS shows on the transport.
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
        }), flush=True)
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    mode, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    if mode == "starttls":
        controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=False)
    elif mode == "implicit":
        controller = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=context)
    else:
        controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"READY {port}", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    controller.stop()


if __name__ == "__main__":
    main()
