"""A real MQTT broker for the tests and the benchmark: Debian's mosquitto on a
loopback port, persisting to a folder of its own, that can be stopped and
started again on the same port (a broker restart)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


def available() -> bool:
    return shutil.which("mosquitto") is not None


class Mosquitto:
    """One broker: `start()`, `stop()`, `url`; optional passwords and TLS files."""

    def __init__(
        self,
        folder: Path,
        port: int,
        passwords: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ):
        self.folder, self.port = folder, port
        folder.mkdir(parents=True, exist_ok=True)
        self.url = f"mqtts://localhost:{port}" if tls else f"mqtt://127.0.0.1:{port}"
        lines = [
            f"listener {port} 127.0.0.1",
            *([f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"] if tls else []),
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder}/mosquitto.log",
            # started as root, mosquitto drops to its own user, which cannot write here
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if passwords:
            password_file = folder / "passwords"
            for user, password in passwords.items():
                subprocess.run(
                    [
                        "mosquitto_passwd",
                        "-b",
                        *(["-c"] if not password_file.exists() else []),
                        str(password_file),
                        user,
                        password,
                    ],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(
            f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
