"""A test Sigstore, made with `cryptography`: a Fulcio CA chain (root -> intermediate -> short-lived leaf with
Fulcio's extensions), a Rekor key, their trusted_root.json, and keyless signatures in cosign's format (the
annotations `cosign sign --new-bundle-format=false` writes: certificate, chain, and the Rekor bundle whose SET
signs the canonical JSON of {body, integratedTime, logIndex, logID}). Each part can be made wrong on purpose."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from image_tagger.edges.keylessverify import ISSUER_OID, LEGACY_ISSUER_OID, canonical
from image_tagger.edges.signer import SigningKey
from image_tagger.rules import signatures
from support.keyless import ISSUER as GITHUB_ISSUER  # the issuer of GitHub's OIDC tokens

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test-sigstore"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def _utf8_string(text: str) -> bytes:
    """DER UTF8String, as Fulcio encodes its .1.8 extension (short or long length form)."""
    body = text.encode()
    length = bytes([len(body)]) if len(body) < 0x80 else bytes([0x81, len(body)])
    return b"\x0c" + length + body


@dataclass
class FulcioCA:
    """A root and an intermediate, as Fulcio's: the intermediate issues the leaves."""

    name: str = "test-fulcio"
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        start, end = now - timedelta(days=30), now + timedelta(days=365)
        root_ski = x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key())
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{self.name} root"))
            .issuer_name(_name(f"{self.name} root"))
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(self.root_key, hashes.SHA384())
        )
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{self.name} intermediate"))
            .issuer_name(self.root.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
            .sign(self.root_key, hashes.SHA384())
        )

    def leaf(
        self,
        key: ec.EllipticCurvePrivateKey,
        identity: str,
        issuer: str | None,
        *,
        legacy_issuer: str | None = None,
        start: datetime | None = None,
        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CODE_SIGNING,
    ) -> x509.Certificate:
        """A ten-minute certificate for `key`, naming `identity` (a URI, or an email with @ and no scheme) and
        `issuer` in Fulcio's extension (.1.8) and, when given, `legacy_issuer` in the old one (.1.1)."""
        start = start or datetime.now(UTC) - timedelta(minutes=1)
        name = x509.RFC822Name(identity) if "://" not in identity else x509.UniformResourceIdentifier(identity)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(minutes=10))
            .add_extension(_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([name]), critical=True)
        )
        if legacy_issuer is not None:
            oid = x509.ObjectIdentifier(LEGACY_ISSUER_OID)
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, legacy_issuer.encode()), critical=False)
        if issuer is not None:
            oid = x509.ObjectIdentifier(ISSUER_OID)
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, _utf8_string(issuer)), critical=False)
        return builder.sign(self.key, hashes.SHA384())

    def authority(self) -> dict[str, object]:
        """Its entry in a trusted_root.json's certificateAuthorities (intermediate first, as Sigstore lists them)."""
        return {
            "subject": {"organization": "test-sigstore", "commonName": self.name},
            "uri": "https://fulcio.test",
            "certChain": {"certificates": [{"rawBytes": _raw(cert)} for cert in (self.intermediate, self.root)]},
            "validFor": {"start": self.root.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }


def _raw(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def _usage(cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Rekor:
    """A transparency log's key: it signs entry timestamps (SETs); its log ID is the SHA-256 of its public key."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    index: int = 41

    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @property
    def log_id(self) -> str:
        return hashlib.sha256(self.public_der()).hexdigest()

    def tlog(self) -> dict[str, object]:
        return {
            "baseUrl": "https://rekor.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": base64.b64encode(self.public_der()).decode(),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2021-01-12T11:53:27Z"},
            },
            "logId": {"keyId": base64.b64encode(bytes.fromhex(self.log_id)).decode()},
        }

    def bundle(
        self, payload: bytes, signature: str, cert: x509.Certificate, integrated: datetime, log_id: str = ""
    ) -> str:
        """cosign's bundle annotation for a hashedrekord entry of this payload, signature and certificate."""
        self.index += 1
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {
                    "content": signature,
                    "publicKey": {"content": base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()},
                },
            },
        }
        signed = {
            "body": base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode(),
            "integratedTime": int(integrated.timestamp()),
            "logIndex": self.index,
            "logID": log_id or self.log_id,
        }
        timestamp = self.key.sign(canonical(signed), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"SignedEntryTimestamp": base64.b64encode(timestamp).decode(), "Payload": signed})


@dataclass
class LocalSigstore:
    """Fulcio and Rekor of one test trust root, and a signer that uses them as cosign does."""

    ca: FulcioCA = field(default_factory=FulcioCA)
    rekor: Rekor = field(default_factory=Rekor)

    def trusted_root(self) -> bytes:
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [self.rekor.tlog()],
                "certificateAuthorities": [self.ca.authority()],
                "ctlogs": [],
                "timestampAuthorities": [],
            },
            indent=2,
        ).encode()

    def sign(
        self,
        payload: bytes,
        identity: str = WORKFLOW,
        issuer: str | None = GITHUB_ISSUER,
        *,
        ca: FulcioCA | None = None,
        rekor: Rekor | None = None,
        logged: bool = True,
        late: timedelta = timedelta(0),
        **leaf: object,
    ) -> signatures.SignatureLayer:
        """A keyless signature of `payload` as cosign writes it: an ephemeral key, its certificate from `ca` (this
        Fulcio unless given; `leaf` holds FulcioCA.leaf's options), its entry logged `late` after signing, the SET
        signed by `rekor`'s key under this log's ID; no bundle when `logged` is False."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf.setdefault("legacy_issuer", issuer)  # Fulcio writes both issuer extensions (cosign 3 reads the old one)
        issuing = ca or self.ca
        cert = issuing.leaf(key, identity, issuer, **leaf)  # type: ignore[arg-type]
        signature = SigningKey("ephemeral", key).sign(payload)
        integrated = cert.not_valid_before_utc + timedelta(minutes=1) + late
        bundle = (rekor or self.rekor).bundle(payload, signature, cert, integrated, self.rekor.log_id) if logged else ""
        return signatures.SignatureLayer(
            payload, signature, _pem(cert), _pem(issuing.intermediate) + _pem(issuing.root), bundle
        )
