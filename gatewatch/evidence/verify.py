"""``gatewatch evidence verify DIR``: is this bundle exactly what the operator signed?

Exit status: 0 when the signature verifies against the given key and every file matches the
manifest (none edited, deleted or added); 1 when anything does not; 2 for bad input (no such
folder, an unreadable key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gatewatch.evidence.signing import SIGNER_IDENTITY, verify_bundle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", type=Path, help="the evidence bundle folder")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", type=Path, help="the signer's SSH public key (e.g. ~/.ssh/id_ed25519.pub)")
    who.add_argument("--allowed-signers", type=Path,
                     help="an ssh-keygen allowed signers file (with --identity) instead of one key")
    parser.add_argument("--identity", default=SIGNER_IDENTITY,
                        help="the signer's name in --allowed-signers (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    result = verify_bundle(args.folder, public_key=args.key, allowed_signers=args.allowed_signers,
                           identity=args.identity)
    for fact in result.facts:
        print(fact)
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    print(f"evidence {args.folder}: {'INTACT' if result.ok else 'NOT INTACT'}")
    return 0 if result.ok else 1
