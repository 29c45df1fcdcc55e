#!/usr/bin/env python3
"""The cloud service's tokens against PyJWT, the platform's own JWT library (cloud-api's
`finding::tokens_interoperate_with_pyjwt` runs it).

  mint   --key PEM --kid KID --org UUID --role coach|admin [--aud-array]
         prints an RS256 user token made by PyJWT with the documented claims
  user   --jwks FILE --token T    verifies a user token with the JWKS; prints its claims
  device --service-key PEM --token T
         verifies a device token with the service key's public half (EdDSA); prints its claims

Exits 1 with PyJWT's reason when a token does not verify.
"""

import argparse
import base64
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def service_public_key(path):
    """The public half of the service's Ed25519 key: a PKCS#8 v2 PEM (it carries the public key
    too, which `cryptography` does not parse), so the 32-byte seed is taken from the DER."""
    with open(path) as f:
        der = base64.b64decode("".join(line for line in f.read().splitlines() if not line.startswith("-----")))
    at = der.find(b"\x04\x22\x04\x20")
    if at < 0:
        sys.exit(f"{path}: not an Ed25519 PKCS#8 key")
    seed = der[at + 4:at + 36]
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mint")
    m.add_argument("--key", required=True)
    m.add_argument("--kid", required=True)
    m.add_argument("--org", required=True)
    m.add_argument("--role", required=True)
    m.add_argument("--aud-array", action="store_true")
    u = sub.add_parser("user")
    u.add_argument("--jwks", required=True)
    u.add_argument("--token", required=True)
    d = sub.add_parser("device")
    d.add_argument("--service-key", required=True)
    d.add_argument("--token", required=True)
    args = p.parse_args()
    try:
        if args.command == "mint":
            with open(args.key, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            now = int(time.time())
            claims = {"sub": "coach@club", "org": args.org, "role": args.role,
                      "aud": ["polyvision-api"] if args.aud_array else "polyvision-api",
                      "iat": now, "nbf": now, "exp": now + 3600}
            print(jwt.encode(claims, key, algorithm="RS256", headers={"kid": args.kid}))
        elif args.command == "user":
            kid = jwt.get_unverified_header(args.token)["kid"]
            with open(args.jwks) as f:
                keys = {k["kid"]: k for k in json.load(f)["keys"]}
            key = jwt.PyJWK(keys[kid]).key
            print(json.dumps(jwt.decode(args.token, key, algorithms=["RS256"], audience="polyvision-api")))
        else:
            public = service_public_key(args.service_key)
            print(json.dumps(jwt.decode(args.token, public, algorithms=["EdDSA"], audience="polyvision-ingest",
                                        issuer="polyvision-cloud")))
    except jwt.PyJWTError as e:
        sys.exit(f"PyJWT refused the token: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
