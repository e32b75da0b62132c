"""The credential helper program buildx runs (`docker-credential-image-tagger`): it relays docker's question to
image-tagger's socket (credhelper.serve) and prints the answer. Apart from the server, and importing nothing but
the standard library's basics, because buildx starts it for each lookup during a push: run with `python -S`, it
starts in about half the time (issue 17).
"""

import json
import os
import socket
import sys

SOCKET_ENV = "IMAGE_TAGGER_CREDENTIAL_SOCKET"
NAME = "image-tagger"
MAX_MESSAGE = 64 << 10  # a server URL asked, a credential answered
ANSWER_TIMEOUT = 10.0  # seconds for one question and its answer, on either side
NOT_FOUND = "credentials not found in native keychain"  # the protocol's words for "no credential here"


def ask(path: str, server: str) -> dict[str, str]:
    """The socket's answer for `server`: {Username, Secret, ServerURL}, or {} when it holds none for it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(ANSWER_TIMEOUT)
        conn.connect(path)
        conn.sendall(server.encode() + b"\n")
        received = b""
        while chunk := conn.recv(MAX_MESSAGE):
            received += chunk
            if len(received) > MAX_MESSAGE:
                raise ValueError(f"answer longer than {MAX_MESSAGE} bytes")
    answer = json.loads(received or b"{}")
    return answer if isinstance(answer, dict) else {}


def main(argv: list[str] | None = None) -> int:
    action = (argv if argv is not None else sys.argv[1:] or [""])[0]
    if action in ("store", "erase"):
        sys.stdin.read(MAX_MESSAGE)
        return 0
    if action == "list":
        print("{}")
        return 0
    if action != "get":
        print(f"{NAME}: unknown action {action!r}; accepted: get | store | erase | list", file=sys.stderr)
        return 2
    server = sys.stdin.read(MAX_MESSAGE).strip()
    try:
        answer = ask(os.environ.get(SOCKET_ENV, ""), server)
    except (OSError, ValueError) as err:
        print(f"{NAME}: the credential socket of image-tagger did not answer ({err})")
        return 1
    if not answer.get("Username"):
        print(NOT_FOUND)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
