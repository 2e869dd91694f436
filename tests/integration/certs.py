"""The certificates of the TLS and WebSocket tests, made with the
openssl command: a CA, two server certificates for localhost and
127.0.0.1, a client certificate CN=tls-user, a second CA with a
CN=tls-user certificate of its own, and an expired client certificate.
OPENSSL is None without the command (the tests then skip)."""

import os
import shutil
import ssl
import subprocess

import pmq
from pmq import check

OPENSSL = shutil.which("openssl")

# The openssl configuration of the certificates: nothing from the
# system's openssl.cnf is used.
OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ca_expired]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
"""


def openssl(args, directory, stdin=None):
    r = subprocess.run([OPENSSL] + args, cwd=directory, input=stdin,
                       capture_output=True, timeout=pmq.patience(10))
    check(r.returncode == 0, "openssl %s failed (%d): %s" %
          (" ".join(args), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout


class Certs:
    """The test's certificates, made in directory d: NAME.pem and
    NAME.key for ca, server1, server2, client (CN=tls-user), other-ca and
    rogue (CN=tls-user too, signed by other-ca)."""

    EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def __init__(self, d):
        self.dir = d
        self.cnf = os.path.join(d, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(OPENSSL_CNF)
        self.authority("ca", "PromptMQ test CA", 1)
        self.leaf("server1", "localhost", "ca", "server", 1001)
        self.leaf("server2", "localhost", "ca", "server", 1002)
        self.leaf("client", "tls-user", "ca", "client", 2001)
        self.authority("other-ca", "Another test CA", 2)
        self.leaf("rogue", "tls-user", "other-ca", "client", 3001)
        self.expired("expired", "tls-user", "ca")

    def pem(self, name):
        return os.path.join(self.dir, name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def der(self, name):
        with open(self.pem(name)) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def authority(self, name, cn, serial):
        openssl(["req", "-config", self.cnf, "-x509"] + self.EC +
                ["-keyout", self.key(name), "-out", self.pem(name), "-days", "2",
                 "-subj", "/CN=" + cn, "-extensions", "ca", "-set_serial", str(serial)],
                self.dir)

    def leaf(self, name, cn, ca, kind, serial):
        csr = os.path.join(self.dir, name + ".csr")
        openssl(["req", "-config", self.cnf, "-new"] + self.EC +
                ["-keyout", self.key(name), "-out", csr, "-subj", "/CN=" + cn], self.dir)
        openssl(["x509", "-req", "-in", csr, "-CA", self.pem(ca), "-CAkey", self.key(ca),
                 "-set_serial", str(serial), "-days", "2", "-extfile", self.cnf,
                 "-extensions", kind, "-out", self.pem(name)], self.dir)


    def expired(self, name, cn, ca):
        """A client certificate of ca whose validity ended in 2020
        (openssl ca takes explicit dates, x509 -req does not)."""
        csr = os.path.join(self.dir, name + ".csr")
        openssl(["req", "-config", self.cnf, "-new"] + self.EC +
                ["-keyout", self.key(name), "-out", csr, "-subj", "/CN=" + cn], self.dir)
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial.txt"), "w") as f:
            f.write("0FA1\n")
        openssl(["ca", "-batch", "-config", self.cnf, "-name", "ca_expired",
                 "-cert", self.pem(ca), "-keyfile", self.key(ca), "-in", csr,
                 "-out", self.pem(name), "-notext", "-extfile", self.cnf,
                 "-extensions", "client", "-startdate", "20200101000000Z",
                 "-enddate", "20200102000000Z"], self.dir)
