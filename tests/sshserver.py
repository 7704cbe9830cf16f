"""A real OpenSSH server for the SSH callback tests: the system's sshd
(Debian's openssh-server, which scripts/_setup.sh installs), started on a
free port of 127.0.0.1 with a configuration, host key, authorized key and
pid file of its own in a temporary directory, serving SFTP (sshd's
internal-sftp) to one user authenticated by a key ssh-keygen made.

sshd runs unprivileged: as the current user, or, when the tests run as
root, as the system user ``daemon`` (sshd as root would need its privilege
separation directory /run/sshd and a root login; ``nobody`` is refused as a
locked account where nss-systemd gives it the shadow entry ``!*``).  An sshd
that is not root can only log in the user it runs as, which is the one the
client names.  The same server serves CPython and PyPy (no Python SSH
library needed)."""

import base64
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading

SBIN = "/usr/sbin:/usr/local/sbin:/sbin"
ROOT_RUNS_AS = "daemon"


def missing():
    """Why the server cannot start on this machine, or None."""
    if shutil.which("sshd", path=SBIN + os.pathsep + os.environ.get("PATH", "")) is None:
        return "OpenSSH's sshd is not installed (Debian: apt-get install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed (Debian: apt-get install openssh-client)"
    return None


def _env():
    """The environment for sshd and ssh-keygen: without scripts/asan.sh's
    preloaded sanitizer, which is there for curlmulti, not for them."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}


def _keygen(path, keytype):
    # PEM: the private key format every libssh2 reads.
    subprocess.run(["ssh-keygen", "-q", "-t", keytype, "-m", "PEM", "-N", "", "-C", "curlmulti-test",
                    "-f", path], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_env())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshServer:
    """sshd serving the files ``files`` ({name: bytes}) over SFTP.

    ``.user``            the user to log in as (``USERNAME``);
    ``.client_key``      its private key file, ``.client_pub`` its public one;
    ``.host_key_type``   the host key's type as known_hosts names it
                         ("ecdsa-sha2-nistp256");
    ``.host_key``        the host key's blob (bytes), as libcurl hands it to
                         the callbacks; ``.host_key_b64`` its base64 (bytes),
                         as known_hosts holds it;
    ``.url(name)``       an sftp:// URL of one of the files;
    ``.known_hosts_line(key_b64=None)``  a known_hosts line for this server
                         (with another key when given one).
    """

    def __init__(self, files, host_key_type="ecdsa"):
        sshd = shutil.which("sshd", path=SBIN + os.pathsep + os.environ.get("PATH", ""))
        if sshd is None:
            raise RuntimeError(missing())
        sshd = os.path.abspath(sshd)  # sshd re-executes itself: it must be named by absolute path
        self.dir = tempfile.mkdtemp(prefix="curlmulti-sshd-")
        os.chmod(self.dir, 0o755)  # traversable by the user sshd runs as
        self.proc = None
        self.log = []
        try:
            self._start(sshd, files, host_key_type)
        except BaseException:
            self.close()
            raise

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _start(self, sshd, files, host_key_type):
        runs_as = pwd.getpwuid(os.geteuid()) if os.geteuid() != 0 else pwd.getpwnam(ROOT_RUNS_AS)
        self.user = runs_as.pw_name
        os.mkdir(self._path("files"))
        for name, data in files.items():
            with open(os.path.join(self._path("files"), name), "wb") as f:
                f.write(data)
        _keygen(self._path("host_key"), host_key_type)
        _keygen(self._path("client_key"), "ecdsa")
        self.client_key = self._path("client_key")
        self.client_pub = self._path("client_key.pub")
        shutil.copyfile(self.client_pub, self._path("authorized_keys"))
        with open(self._path("host_key.pub"), "rb") as f:
            kind, b64 = f.read().split()[:2]
        self.host_key_type = kind.decode()
        self.host_key_b64 = b64
        self.host_key = base64.b64decode(b64)
        # When root, the tree belongs to the user sshd runs as (its host key
        # must be its own; it writes its pid file there).
        if os.geteuid() == 0:
            for base, dirs, names in os.walk(self.dir):
                for n in [base] + [os.path.join(base, x) for x in dirs + names]:
                    os.chown(n, runs_as.pw_uid, runs_as.pw_gid)
        # A port picked free, then bound by sshd: another process may take it
        # in between, so a bind failure is tried again on another port.
        for _ in range(5):
            self.port = _free_port()
            if self._run_sshd(sshd, runs_as):
                return
        raise RuntimeError("sshd did not start:\n" + "".join(self.log))

    def _config(self):
        lines = [
            "ListenAddress 127.0.0.1",
            "Port %d" % self.port,
            "HostKey " + self._path("host_key"),
            "PidFile " + self._path("sshd.pid"),
            "AuthorizedKeysFile " + self._path("authorized_keys"),
            "AllowUsers " + self.user,
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
        ]
        with open(self._path("sshd_config"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _run_sshd(self, sshd, runs_as):
        """Starts sshd on self.port; True once it listens, False if it exited."""
        self._config()
        kwargs = {}
        if os.geteuid() == 0:
            kwargs = dict(user=runs_as.pw_uid, group=runs_as.pw_gid, extra_groups=[])
        self.log = []
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", self._path("sshd_config")], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir, env=_env(), **kwargs)
        listening = threading.Event()
        threading.Thread(target=self._read_log, args=(self.proc, listening), daemon=True).start()
        # sshd says "Server listening on 127.0.0.1 port N." once bound; a
        # failure ends it, and the reader sets the event at its EOF too.
        if not listening.wait(60):
            raise RuntimeError("sshd neither listened nor exited within 60 s:\n" + "".join(self.log))
        if self.proc.poll() is None and any("Server listening on" in line for line in self.log):
            return True
        self.proc.wait(10)
        self.proc = None
        return False

    def _read_log(self, proc, listening):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.log.append(line)
            if "Server listening on" in line:
                listening.set()
        proc.stderr.close()
        listening.set()

    def url(self, name):
        return "sftp://127.0.0.1:%d%s/%s" % (self.port, self._path("files"), name)

    def known_hosts_line(self, key_b64=None):
        return b"[127.0.0.1]:%d %s %s\n" % (self.port, self.host_key_type.encode(), key_b64 or self.host_key_b64)

    def close(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
