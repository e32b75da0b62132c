"""cosign's keys, in this process: read an encrypted `cosign.key`, sign a payload, check a signature with a public key.

Why not the cosign binary: it is about 87 MB, which the action image cannot carry (its budget is 150 MB), and a
release job would otherwise pull a second image. `cryptography` does the signing and checking, PyNaCl (already in
the image for PyGithub) opens cosign's key file. The signatures are cosign's own, checked by cosign's client in
the tests. The key and its password stay in this process: never in a file, an argument list or a child.

A cosign key file is PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, or `ENCRYPTED COSIGN PRIVATE KEY` from older cosign)
around JSON: an scrypt key derivation (salt and cost), a NaCl secretbox nonce, and the ciphertext of the private
key in PKCS #8 DER.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from image_tagger.model.errors import InputError
from image_tagger.rules.signatures import SignatureLayer

ENCRYPTED_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n(.+?)\r?\n-----END \1-----", re.DOTALL)
MAX_KEY_FILE = 64 << 10
# scrypt costs cosign writes are N=32768 (cosign 2) or 65536 (cosign 3), r=8, p=1 (32 or 64 MiB); a file asking for
# far more is refused, not obeyed.
MAX_SCRYPT_MEMORY = 256 << 20
ACCEPTED_KEY = "a cosign private key (cosign generate-key-pair) with its password"


@dataclass(frozen=True)
class SigningKey:
    """A usable private key; `name` says where it came from (for errors), never what it is."""

    name: str
    key: Any = field(repr=False)

    def sign(self, payload: bytes) -> str:
        """The base64 signature cosign writes: ECDSA with the curve's hash (DER), RSA PKCS #1 v1.5 with SHA-256,
        or Ed25519 over the payload itself."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            signature = self.key.sign(payload, ec.ECDSA(_curve_hash(self.key.curve)))
        elif isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(self.key, ed25519.Ed25519PrivateKey):
            signature = self.key.sign(payload)
        else:  # load_signing_key refuses other kinds
            raise InputError(f"{self.name}: this kind of key cannot sign; accepted: {ACCEPTED_KEY}")
        return base64.b64encode(signature).decode()

    def public(self) -> PublicKey:
        """The matching public key: what a verifier of these signatures holds."""
        return PublicKey(self.name, self.key.public_key())


def _curve_hash(curve: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(curve.name, hashes.SHA256())


def _pem_blocks(text: bytes) -> list[tuple[str, bytes]]:
    return [(kind.decode(), body) for kind, body in _PEM.findall(text)]


def _b64(value: Any, what: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise InputError(f"{name}: {what} is not base64; accepted: {ACCEPTED_KEY}") from None


def load_signing_key(text: bytes, password: str, name: str) -> SigningKey:
    """The private key of a cosign key file; InputError (exit 2) names what is wrong, never the key or password."""
    if len(text) > MAX_KEY_FILE:
        raise InputError(f"{name}: larger than {MAX_KEY_FILE} bytes; accepted: {ACCEPTED_KEY}")
    blocks = [(kind, body) for kind, body in _pem_blocks(text) if kind in ENCRYPTED_TYPES]
    if not blocks:
        raise InputError(f"{name}: no ENCRYPTED SIGSTORE PRIVATE KEY block; accepted: {ACCEPTED_KEY}")
    try:
        sealed = json.loads(_b64(b"".join(blocks[0][1].split()), "the key block", name))
        kdf, cipher = sealed["kdf"], sealed["cipher"]
        params = kdf["params"]
        cost, rounds, parallel = int(params["N"]), int(params["r"]), int(params["p"])
        salt, nonce = _b64(kdf["salt"], "the salt", name), _b64(cipher["nonce"], "the nonce", name)
        ciphertext = _b64(sealed["ciphertext"], "the ciphertext", name)
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{name}: not a cosign key file (its JSON is incomplete); accepted: {ACCEPTED_KEY}") from None
    if names != ("scrypt", "nacl/secretbox"):
        raise InputError(f"{name}: sealed with {names[0]}/{names[1]}; accepted: scrypt and nacl/secretbox (cosign)")
    memory = 128 * rounds * cost * parallel
    if cost < 2 or cost & (cost - 1) or not 0 < rounds <= 32 or not 0 < parallel <= 16 or memory > MAX_SCRYPT_MEMORY:
        raise InputError(f"{name}: scrypt cost N={cost} r={rounds} p={parallel} is refused; accepted: {ACCEPTED_KEY}")
    from nacl.bindings import crypto_pwhash_scryptsalsa208sha256_ll as scrypt
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    # libsodium's scrypt: a third faster than OpenSSL's (hashlib) here, and this is a signed job's longest wait
    # before it may sign; both let other threads run meanwhile (the build).
    secret = scrypt(password.encode(), salt, cost, rounds, parallel, dklen=32, maxmem=memory + (1 << 20))
    try:
        der = SecretBox(secret).decrypt(ciphertext, nonce)
    except (CryptoError, ValueError):
        raise InputError(f"{name}: the password does not open this key (wrong password, or a damaged file)") from None
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        key = load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        raise InputError(f"{name}: the opened key is not a PKCS #8 private key; accepted: {ACCEPTED_KEY}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise InputError(f"{name}: a {type(key).__name__} cannot sign here; accepted: ECDSA, RSA or Ed25519 keys")
    return SigningKey(name, key)


@dataclass(frozen=True)
class PublicKey:
    name: str
    key: Any = field(repr=False)

    def verifies(self, payload: bytes, signature: str) -> bool:
        """Whether `signature` (base64, as cosign writes it) is this key's signature over `payload`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

        try:
            raw = base64.b64decode(signature, validate=True)
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(raw, payload, ec.ECDSA(_curve_hash(self.key.curve)))
            elif isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(raw, payload)
            else:
                return False
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def problem(self, layer: SignatureLayer) -> str | None:
        """Why `layer` is not this key's signature; None when it is (operations/verify.py asks every signer so)."""
        return None if self.verifies(layer.payload, layer.signature) else "another key's signature"


def load_public_key(text: bytes, name: str) -> PublicKey:
    """A PEM public key (cosign.pub); InputError when the file holds none."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if len(text) > MAX_KEY_FILE or not any(kind == "PUBLIC KEY" for kind, _ in _pem_blocks(text)):
        raise InputError(f"{name}: no PUBLIC KEY block; accepted: a PEM public key such as cosign.pub")
    try:
        return PublicKey(name, load_pem_public_key(text))
    except (ValueError, TypeError):
        raise InputError(f"{name}: its PUBLIC KEY block is not a key; accepted: a PEM public key") from None


def new_key_pair(password: str, name: str) -> tuple[str, PublicKey]:
    """A fresh ECDSA P-256 key as cosign generate-key-pair writes it (scrypt N=32768 r=8 p=1, NaCl secretbox,
    PKCS #8 inside), and its public key: for the demo, which signs with a key that lives only as long as it runs."""
    import os

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    from nacl.bindings import crypto_pwhash_scryptsalsa208sha256_ll as scrypt
    from nacl.secret import SecretBox

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(SecretBox.NONCE_SIZE)
    secret = scrypt(password.encode(), salt, 32768, 8, 1, dklen=32, maxmem=64 << 20)
    sealed = {
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(SecretBox(secret).encrypt(der, nonce).ciphertext).decode(),
    }
    encoded = base64.b64encode(json.dumps(sealed).encode()).decode()
    body = "".join(f"{encoded[i : i + 64]}\n" for i in range(0, len(encoded), 64))  # PEM's line length, as Go's
    text = f"-----BEGIN {ENCRYPTED_TYPES[0]}-----\n{body}-----END {ENCRYPTED_TYPES[0]}-----\n"
    return text, PublicKey(name, key.public_key())
