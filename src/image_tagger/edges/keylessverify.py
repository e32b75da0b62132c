"""Keyless cosign signatures, checked offline against Sigstore's trust root: the checks `cosign verify
--certificate-identity … --certificate-oidc-issuer …` makes of a signature in cosign's tag-based layout.

A keyless layer carries a short-lived Fulcio certificate (the signer's identity and OIDC issuer), the chain that
issued it, and a Rekor bundle: the log's signed entry timestamp (SET) over the entry, its integration time, index and
log ID. A signature vouches for that identity only when the signature is the certificate's, the SET verifies with a
trusted Rekor key and its entry names this very payload, signature and certificate, the log took it while the
certificate was valid, and the certificate chains to a trusted Fulcio root at that time. The SCT Fulcio embeds in
its certificates is not checked: the Rekor entry is the transparency proof checked here. `cryptography` (already in
the image for key signatures) does it all; the `sigstore` library would add some 40 MB to a full action image.

The trust root is data, in the format of Sigstore's `trusted_root.json`: by default `sigstore_trusted_root.json`
beside this file, the public-good instance's Rekor key and Fulcio certificate chains (taken from the
trusted_root.json of sigstore's TUF repository, https://tuf-repo-cdn.sigstore.dev, as sigstore-python 4.5.1 ships
it; Apache-2.0, the Sigstore authors); `--trusted-root` names another (a private Sigstore, or tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from image_tagger.edges.signer import PublicKey
from image_tagger.model.errors import InputError
from image_tagger.rules import jsonlimits, signatures

if TYPE_CHECKING:  # RE2 is loaded only for a regexp identity
    from image_tagger.fluxrules.goports.goregex import GoRegexp

PUBLIC_GOOD = Path(__file__).with_name("sigstore_trusted_root.json")
ACCEPTED_ROOT = "a Sigstore trusted_root.json (Fulcio certificate chains and Rekor keys)"
MAX_ROOT = 1 << 20
MAX_BUNDLE = 64 << 10  # a bundle is a few kilobytes: an entry, a certificate, a signature
ISSUER_OID, LEGACY_ISSUER_OID = "1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.1"  # Fulcio's OIDC issuer extensions


@dataclass(frozen=True)
class Window:
    """When a key or CA of the trust root may be relied on (its `validFor`); no end: still in use."""

    start: datetime
    end: datetime | None

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


@dataclass(frozen=True)
class TrustRoot:
    name: str
    authorities: tuple[tuple[tuple[Any, ...], Window], ...] = field(repr=False)  # Fulcio chains, issuer first
    logs: Mapping[str, tuple[Any, Window]] = field(repr=False)  # Rekor's ECDSA keys by log ID (hex)


def _root_error(name: str, what: str) -> InputError:
    return InputError(f"{name}: {what}; accepted: {ACCEPTED_ROOT}")


def _window(entry: Any, name: str) -> Window:
    try:
        valid = entry.get("validFor") or {}
        start, end = valid["start"], valid.get("end")
        return Window(_instant(start), _instant(end) if end else None)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise _root_error(name, "a validFor without an RFC 3339 start") from None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment


def load_trust_root(text: bytes, name: str) -> TrustRoot:
    """The Fulcio chains and Rekor keys of a trusted_root.json; InputError (exit 2) names what is wrong."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if len(text) > MAX_ROOT:
        raise _root_error(name, f"larger than {MAX_ROOT} bytes")
    try:
        document = jsonlimits.loads(text, MAX_ROOT)
        authorities, logs = [], {}
        for authority in document.get("certificateAuthorities") or []:
            chain = tuple(
                x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"], validate=True))
                for cert in authority["certChain"]["certificates"]
            )
            if chain:
                authorities.append((chain, _window(authority, name)))
        for log in document.get("tlogs") or []:
            key = load_der_public_key(base64.b64decode(log["publicKey"]["rawBytes"], validate=True))
            if isinstance(key, ec.EllipticCurvePublicKey):  # the logs that sign entry timestamps (Rekor v1)
                log_id = base64.b64decode(log["logId"]["keyId"], validate=True).hex()
                logs[log_id] = (key, _window(log["publicKey"], name))
    except InputError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise _root_error(name, "not a trusted_root.json (its certificates or keys do not read)") from None
    if not authorities or not logs:
        raise _root_error(name, "it holds no Fulcio certificate chain or no ECDSA Rekor key")
    return TrustRoot(name, tuple(authorities), logs)


def public_good() -> TrustRoot:
    return load_trust_root(PUBLIC_GOOD.read_bytes(), "Sigstore's public-good trust root")


@dataclass(frozen=True)
class Identity:
    """Whom a keyless signature must name: the certificate's identity (exactly, or matched by a Go regexp, as
    cosign's --certificate-identity-regexp) and its OIDC issuer."""

    issuer: str
    exact: str = ""
    pattern: GoRegexp | None = None

    def names(self, name: str) -> bool:
        """Whether one of the certificate's identities, `name`, is the one wanted."""
        return self.pattern.matches(name) if self.pattern else name == self.exact

    def __str__(self) -> str:
        who = self.exact or f"an identity matching {self.pattern.pattern if self.pattern else ''!r}"
        return f"{who} (issuer {self.issuer})"


def identity(exact: str | None, pattern: str | None, issuer: str | None, flags: tuple[str, str, str]) -> Identity:
    """The identity flags (or inputs) `flags` name, checked: an issuer and exactly one of identity or regexp."""
    identity_flag, regexp_flag, issuer_flag = flags
    if not issuer:
        raise InputError(
            f"{issuer_flag} is needed for keyless; accepted: the OIDC issuer, e.g. "
            "https://token.actions.githubusercontent.com"
        )
    if bool(exact) == bool(pattern):
        raise InputError(
            f"{identity_flag} or {regexp_flag}: give one of them; accepted: the certificate's identity, "
            "e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/v1.4.2"
        )
    from image_tagger.fluxrules.goports.goregex import GoRegexError, GoRegexp

    try:
        compiled = GoRegexp(pattern) if pattern else None
    except GoRegexError as err:
        raise InputError(f"{regexp_flag} {pattern!r}: {err}; accepted: a Go regular expression") from None
    return Identity(issuer, exact or "", compiled)


def keyless_check(
    values: tuple[str | None, str | None, str | None], names: tuple[str, str, str], root: tuple[bytes, str] | None
) -> KeylessCheck:
    """The check the identity flags or inputs `names` ask for with `values`, under the trust root `root` (its text
    and name), else the pinned public-good one; InputError (exit 2) for either when it is not usable."""
    who = identity(*values, names)
    return KeylessCheck(who, load_trust_root(*root) if root else public_good())


def canonical(document: Mapping[str, object]) -> bytes:
    """RFC 8785 canonical JSON for Rekor's entry payload (strings and integers: sorted keys, no spaces, UTF-8)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def certificate_issuer(cert: Any) -> str | None:
    """The OIDC issuer Fulcio wrote: its DER UTF8String extension, else the legacy raw one."""
    from cryptography import x509

    values = {
        ext.oid.dotted_string: ext.value for ext in cert.extensions if isinstance(ext.value, x509.UnrecognizedExtension)
    }
    if ISSUER_OID in values:
        raw = values[ISSUER_OID].value
        if len(raw) < 2 or raw[0] != 0x0C:
            return None
        length, start = raw[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, start = int.from_bytes(raw[2 : 2 + count]), 2 + count
        body = raw[start : start + length]
        return body.decode("utf-8", "replace") if len(body) == length else None
    if LEGACY_ISSUER_OID in values:
        return values[LEGACY_ISSUER_OID].value.decode("utf-8", "replace")
    return None


def certificate_names(cert: Any) -> list[str]:
    """The certificate's identities: its SAN URIs and email addresses."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.UniformResourceIdentifier), *san.get_values_for_type(x509.RFC822Name)]


@dataclass(frozen=True)
class LogEntry:
    """A Rekor bundle as cosign annotates it, read: the SET, the fields it signs, the entry's body, and when the log
    integrated the entry."""

    timestamp: bytes
    signed: dict[str, object]
    body: dict[str, Any]
    integrated: datetime


def read_bundle(text: str) -> LogEntry | None:
    """cosign's `dev.sigstore.cosign/bundle`: {"SignedEntryTimestamp": b64, "Payload": {"body": b64 entry JSON,
    "integratedTime", "logIndex", "logID": hex}}; None when it is not one."""
    try:
        bundle = jsonlimits.loads(text, MAX_BUNDLE)
        fields = bundle["Payload"]
        signed = {key: fields[key] for key in ("body", "integratedTime", "logIndex", "logID")}
        numbers = [signed["integratedTime"], signed["logIndex"]]
        if not all(type(number) is int for number in numbers) or not isinstance(signed["logID"], str):
            return None
        body = jsonlimits.loads(base64.b64decode(signed["body"], validate=True), MAX_BUNDLE)
        timestamp = base64.b64decode(bundle["SignedEntryTimestamp"], validate=True)
        integrated = datetime.fromtimestamp(numbers[0], UTC)
    except (ValueError, KeyError, TypeError, OverflowError, OSError, binascii.Error):
        return None
    return LogEntry(timestamp, signed, body, integrated) if isinstance(body, dict) else None


def _entry_problem(body: Mapping[str, Any], layer: signatures.SignatureLayer, cert_der: bytes) -> str | None:
    """Why the logged entry (a hashedrekord) is not this signature: payload hash, signature and certificate."""
    from cryptography import x509

    if body.get("kind") != "hashedrekord":
        return f"its Rekor entry is a {str(body.get('kind'))[:40]!r}, not a hashedrekord"
    try:
        spec = body["spec"]
        hashed = (spec["data"]["hash"]["algorithm"], spec["data"]["hash"]["value"])
        logged_signature = spec["signature"]["content"]
        logged_cert = x509.load_pem_x509_certificate(base64.b64decode(spec["signature"]["publicKey"]["content"]))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "its Rekor entry does not read as a hashedrekord"
    if hashed != ("sha256", hashlib.sha256(layer.payload).hexdigest()):
        return "its Rekor entry logs another payload"
    if logged_signature != layer.signature:
        return "its Rekor entry logs another signature"
    if logged_cert.public_bytes(_der()) != cert_der:
        return "its Rekor entry logs another certificate"
    return None


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


@dataclass(frozen=True)
class KeylessCheck:
    """Is a signature layer a keyless signature by `who`, under the trust root `root`?"""

    who: Identity
    root: TrustRoot = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.who)

    def problem(self, layer: signatures.SignatureLayer) -> str | None:
        """Why `layer` does not vouch for this identity (one phrase); None when it does."""
        from cryptography import x509
        from cryptography.exceptions import UnsupportedAlgorithm

        if not layer.certificate:
            return "a key's signature, not a keyless one (no certificate)"
        try:
            cert = x509.load_pem_x509_certificate(layer.certificate.encode())
            certified = PublicKey("certificate", cert.public_key())
        except (ValueError, UnsupportedAlgorithm):
            return "its certificate is not a PEM certificate with a key we know"
        if not certified.verifies(layer.payload, layer.signature):
            return "its signature is not by its certificate's key"
        if not layer.bundle:
            return "no transparency-log proof (no Rekor bundle)"
        entry = read_bundle(layer.bundle)
        if entry is None:
            return "no transparency-log proof (its Rekor bundle does not read)"
        if problem := self.log_problem(entry) or _entry_problem(entry.body, layer, cert.public_bytes(_der())):
            return problem
        try:
            return self._certificate_problem(cert, entry.integrated, self.root.logs[str(entry.signed["logID"])][1])
        except ValueError as err:  # an extension that does not parse, found as cryptography reads it
            return f"untrusted: its certificate does not read ({str(err)[:120]})"

    def log_problem(self, entry: LogEntry) -> str | None:
        """Why `entry` is no proof from a trusted log: its log is not in the trust root, or its SET (ECDSA over the
        canonical JSON of body, integratedTime, logIndex and logID, as Rekor signs it) does not verify."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        log = self.root.logs.get(str(entry.signed["logID"]))
        if log is None:
            return "no transparency-log proof (its Rekor bundle is from a log the trust root does not hold)"
        try:
            log[0].verify(entry.timestamp, canonical(entry.signed), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "no transparency-log proof (its Rekor bundle's signature does not verify with the trusted Rekor key)"
        return None

    def _certificate_problem(self, cert: Any, logged: datetime, valid: Window) -> str | None:
        """Why `cert`, logged at `logged` by a log valid in `valid`, is not this identity's, trusted then."""
        if not valid.holds(logged):
            return f"logged at {logged:%Y-%m-%dT%H:%M:%SZ}, outside the trusted Rekor key's validity"
        if not cert.not_valid_before_utc <= logged <= cert.not_valid_after_utc:
            return (
                f"logged at {logged:%Y-%m-%dT%H:%M:%SZ}, outside its certificate's validity "
                f"({cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
            )
        if (untrusted := self.chain_problem(cert, logged)) is not None:
            return untrusted
        names, issuer = certificate_names(cert), certificate_issuer(cert)
        if not any(self.who.names(name) for name in names):
            return f"signed by another identity ({', '.join(names)[:200] or 'none named'})"
        if issuer != self.who.issuer:
            return f"signed through another issuer ({str(issuer)[:120]})"
        return None

    def chain_problem(self, cert: Any, moment: datetime) -> str | None:
        """Why `cert` does not chain, at `moment`, to a Fulcio CA of the trust root valid then, for code signing."""
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID
        from cryptography.x509.verification import (
            Criticality,
            ExtensionPolicy,
            PolicyBuilder,
            Store,
            VerificationError,
        )

        # Web PKI's rules for the chain, but Fulcio's extended key usage (code signing, checked below) for client auth.
        ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
            x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
        )
        ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
        )
        chained = False
        for chain, valid in self.root.authorities:
            if not valid.holds(moment):
                continue
            verifier = (
                PolicyBuilder()
                .store(Store([chain[-1]]))
                .time(moment)
                .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
                .build_client_verifier()
            )
            try:
                verifier.verify(cert, list(chain[:-1]))
            except (VerificationError, x509.UnsupportedGeneralNameType):
                continue
            chained = True
            break
        if not chained:
            return f"untrusted: its certificate does not chain to {self.root.name}'s Fulcio CA"
        try:
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usage = []
        if ExtendedKeyUsageOID.CODE_SIGNING not in usage:
            return "untrusted: its certificate is not for code signing"
        return None
