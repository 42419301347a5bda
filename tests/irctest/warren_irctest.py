"""irctest controller for Warren (docs/IRC.md, "Conformance").

Starts the real warrend on the port irctest picks, with abuse limits lifted (irctest opens
many connections from 127.0.0.1) and the suite's short passwords (3 bytes and up) allowed. Accounts are registered over
Warren's own JSON-lines protocol on the native port, because the IRC side has no
account-registration command yet. It declares only what Warren's IRC listener offers, so a
test of a declared capability that Warren gets wrong fails instead of being skipped.
"""

import json
import os
import shutil
import socket
import time
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

CONFIG = """
[rate]
user_per_min = 1000000000
user_burst = 1000000000
ip_per_min = 1000000000
ip_burst = 1000000000
[connections]
per_ip_max = 1000000
new_per_ip_max = 1000000
[security]
allowlist = ["127.0.0.0/8", "::1/128"]
registrations_per_ip_max = 1000000
[limits]
password_min = 3
[irc]
server_name = "My.Little.Server"
"""


def warrend_binary() -> str:
    path = os.environ.get("WARREND")
    if path:
        return path
    found = shutil.which("warrend")
    if not found:
        raise RuntimeError("set WARREND to the warrend binary")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WarrenController(BaseServerController, DirectoryBasedController):
    software_name = "Warren"
    _port_wait_interval = 0.02
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    supports_sts = False
    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_TAG,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_REDACTION,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        )
    )
    optional_behaviors = frozenset((OptionalBehaviors.CAP_REQ_MINUS,))
    native_port = 0

    def create_config(self) -> None:
        super().create_config()
        with self.open_file("warren.toml") as fd:
            fd.write(CONFIG)

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if ssl:
            raise NotImplementedByController("TLS")
        if password is not None:
            raise NotImplementedByController("server password")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory
        self.native_port = free_port()
        self.proc = self.execute(
            [
                warrend_binary(),
                "--config",
                str(self.directory / "warren.toml"),
                "--data-dir",
                str(self.directory / "data"),
                "--listen",
                "127.0.0.1:%d" % self.native_port,
                "--irc-listen",
                "%s:%d" % (hostname, port),
                "--admin-listen",
                "off",
                "--log-level",
                "warn",
            ]
        )

    def native_connection(self) -> socket.socket:
        """The native listener, once warrend has it open (it may still be starting)."""
        deadline = time.monotonic() + 20
        while True:
            self.check_is_alive()
            try:
                return socket.create_connection(("127.0.0.1", self.native_port), timeout=10)
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def wait_for_services(self) -> None:
        """Accounts are Warren's own: ready once the native listener answers."""
        self.native_connection().close()

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """REGISTER over the JSON-lines protocol: one request, one reply."""
        assert password
        with self.native_connection() as s:
            f = s.makefile("rwb")
            f.readline()  # HELLO
            req = {"id": 1, "op": "REGISTER", "username": username, "password": password}
            f.write((json.dumps(req) + "\n").encode())
            f.flush()
            reply = json.loads(f.readline())
            if not reply.get("ok"):
                raise RuntimeError("REGISTER %s: %s" % (username, reply))


def get_irctest_controller_class() -> Type[WarrenController]:
    return WarrenController
