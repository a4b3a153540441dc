"""`strongroom serve` with TLS and with several worker processes, on each storage backend."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Backend, start_server


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _client(server, url, **kw):
    session = boto3.Session(profile_name="strongroom")
    return session.client("secretsmanager", endpoint_url=url, **kw)


def test_tls_serves_https_and_reports_secure_transport(tmp_path, monkeypatch, backend: Backend):
    cert, key = _self_signed(tmp_path)
    server = start_server(tmp_path, args=("--tls-cert", str(cert), "--tls-key", str(key)), scheme="https",
                          verify=str(cert), backend=backend)
    try:
        monkeypatch.setenv("AWS_CONFIG_FILE", server.env["AWS_CONFIG_FILE"])
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", server.env["AWS_SHARED_CREDENTIALS_FILE"])
        assert server.url.startswith("https://")
        sm = _client(server, server.url, verify=str(cert))
        sm.create_secret(Name="tls/secret", SecretString="over-tls")
        assert sm.get_secret_value(SecretId="tls/secret")["SecretString"] == "over-tls"
        # A policy conditioned on aws:SecureTransport allows only this HTTPS caller.
        sm.put_resource_policy(SecretId="tls/secret", ResourcePolicy=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*",'
            '"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}'))
        assert sm.get_secret_value(SecretId="tls/secret")["SecretString"] == "over-tls"
    finally:
        server.stop()


def test_several_workers_share_one_database(tmp_path, monkeypatch, backend: Backend):
    server = start_server(tmp_path, args=("--workers", "2"), backend=backend)
    try:
        monkeypatch.setenv("AWS_CONFIG_FILE", server.env["AWS_CONFIG_FILE"])
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", server.env["AWS_SHARED_CREDENTIALS_FILE"])
        sm = _client(server, server.url)
        for i in range(20):
            sm.put_secret_value(SecretId="multi", SecretString=f"v{i}") if i else \
                sm.create_secret(Name="multi", SecretString="v0")
            # Every read, on whichever worker, sees the write just acknowledged.
            assert sm.get_secret_value(SecretId="multi")["SecretString"] == f"v{i}"
        workers = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 2
        # The workers shared the backend's database, not a SQLite file of their own.
        rows = server.sql("SELECT count(*) FROM secret_versions v JOIN secrets s ON s.id = v.secret_id "
                          "WHERE s.name = 'multi'")
        assert rows == [(20,)]
        assert (server.data_dir / "strongroom.db").exists() == (backend.name == "sqlite")
    finally:
        server.stop()


def _from_proxy(sm):
    """Every request as a reverse proxy would pass it on for a caller at 203.0.113.9."""
    def add(request, **_):
        request.headers["X-Forwarded-For"] = "203.0.113.9"
    sm.meta.events.register("before-send.secrets-manager.*", add)
    return sm


_ONLY_FROM_TEST_NET = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*",'
    '"Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}')


def test_forwarding_headers_are_trusted_only_from_named_proxies(tmp_path, monkeypatch):
    for args, trusted in (((), False), (("--forwarded-allow-ips", "127.0.0.1"), True)):
        run = tmp_path / ("trusted" if trusted else "default")
        run.mkdir()
        server = start_server(run, args=args)
        try:
            monkeypatch.setenv("AWS_CONFIG_FILE", server.env["AWS_CONFIG_FILE"])
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", server.env["AWS_SHARED_CREDENTIALS_FILE"])
            sm = _client(server, server.url)
            sm.create_secret(Name="proxied", SecretString="behind-a-proxy")
            sm.put_resource_policy(SecretId="proxied", ResourcePolicy=_ONLY_FROM_TEST_NET)
            proxied = _from_proxy(_client(server, server.url))
            if trusted:  # the proxy's word is the caller's address
                assert proxied.get_secret_value(SecretId="proxied")["SecretString"] == "behind-a-proxy"
            else:  # anyone on the host could claim any address: the header is ignored
                try:
                    proxied.get_secret_value(SecretId="proxied")
                except sm.exceptions.ClientError as exc:
                    assert exc.response["Error"]["Code"] == "AccessDeniedException"
                else:
                    raise AssertionError("a forwarding header was trusted without --forwarded-allow-ips")
            trail = boto3.Session(profile_name="strongroom").client("cloudtrail", endpoint_url=server.url)
            events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                            "AttributeValue": "GetSecretValue"}])["Events"]
            assert json.loads(events[0]["CloudTrailEvent"])["sourceIPAddress"] == (
                "203.0.113.9" if trusted else "127.0.0.1")
        finally:
            server.stop()
