"""Sign an evidence bundle with the operator's SSH key, and verify a bundle against it.

Why an SSH signature over the manifest: a SHA-256 manifest alone shows that files match the
manifest, but anyone who edits a file can write a new manifest. ``ssh-keygen -Y sign`` (the way
git signs commits with SSH keys) signs the manifest with a key only the operator holds, so an
edited, deleted or added file either breaks a hash or needs a new manifest, and a new manifest
needs the operator's key. What a signature proves: this key signed exactly this list of files; not
that the session itself was honest (docs/guarantees.md).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gatewatch.config import ConfigError

MANIFEST_NAME = "MANIFEST.sha256"
SIGNATURE_NAME = "MANIFEST.sha256.sig"
NAMESPACE = "gatewatch-evidence"
"""The ssh-keygen signature namespace: a signature made for evidence is valid for nothing else."""
SIGNER_IDENTITY = "gatewatch-operator"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(folder: Path) -> list[str]:
    """Every file of the bundle (relative POSIX paths) except the manifest and its signature."""
    names = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file() or path.is_symlink())
    return sorted(name for name in names if name not in (MANIFEST_NAME, SIGNATURE_NAME))


def write_manifest(folder: Path) -> Path:
    """List every file under ``folder`` (but the manifest and signature) in ``sha256sum`` format."""
    manifest = folder / MANIFEST_NAME
    lines = [f"{sha256_file(folder / name)}  {name}" for name in bundle_files(folder)]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / SIGNATURE_NAME).unlink(missing_ok=True)  # a stale signature would not match
    return manifest


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise ConfigError("ssh-keygen not found: install openssh-client to sign or verify evidence")
    return found


def sign_manifest(folder: Path, key: Path) -> Path:
    """``ssh-keygen -Y sign`` the manifest with the operator's private key; returns the signature."""
    if not key.is_file():
        raise ConfigError(f"--sign-key: no such key file: {key}")
    manifest = folder / MANIFEST_NAME
    result = subprocess.run(
        [_ssh_keygen(), "-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE, str(manifest)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    signature = folder / SIGNATURE_NAME
    if result.returncode != 0 or not signature.is_file():
        raise ConfigError(f"--sign-key: ssh-keygen could not sign with {key}: {result.stderr.strip()}")
    return signature


@dataclass
class Verification:
    """What ``gatewatch evidence verify`` found: problems (empty = the bundle is intact) and facts."""

    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_signature(folder: Path, allowed_signers: Path, identity: str, result: Verification) -> None:
    signature = folder / SIGNATURE_NAME
    if not signature.is_file():
        result.problems.append(f"{SIGNATURE_NAME} missing: the bundle is not signed")
        return
    with (folder / MANIFEST_NAME).open("rb") as manifest:
        checked = subprocess.run(
            [_ssh_keygen(), "-Y", "verify", "-f", str(allowed_signers), "-I", identity, "-n", NAMESPACE,
             "-s", str(signature)],
            stdin=manifest, capture_output=True, text=True, timeout=60, check=False,
        )
    if checked.returncode == 0:
        result.facts.append(checked.stdout.strip() or "signature good")
    else:
        detail = (checked.stderr or checked.stdout).strip().splitlines()
        result.problems.append(
            f"{MANIFEST_NAME}: signature does not verify against the given key"
            + (f" ({detail[-1]})" if detail else "")
        )


def _check_files(folder: Path, result: Verification) -> None:
    listed: dict[str, str] = {}
    for number, line in enumerate((folder / MANIFEST_NAME).read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        entry = PurePosixPath(name)
        if not sep or len(digest) != 64 or entry.is_absolute() or ".." in entry.parts:
            result.problems.append(f"{MANIFEST_NAME} line {number}: not a 'sha256  relative/path' entry")
            continue
        listed[name] = digest
    for name, digest in sorted(listed.items()):
        file = folder / name
        if file.is_symlink() or not file.is_file():
            result.problems.append(f"{name}: listed in the manifest but missing (deleted)")
        elif sha256_file(file) != digest:
            result.problems.append(f"{name}: content differs from the manifest (edited)")
    for name in bundle_files(folder):
        if name not in listed:
            result.problems.append(f"{name}: not in the manifest (added after signing)")
    result.facts.append(f"{len(listed)} file(s) listed in {MANIFEST_NAME}")


def verify_bundle(folder: Path, *, public_key: Path | None = None, allowed_signers: Path | None = None,
                  identity: str = SIGNER_IDENTITY) -> Verification:
    """Check the signature over the manifest, then every file: edits, deletions and additions."""
    if not folder.is_dir():
        raise ConfigError(f"DIR: no such evidence folder: {folder}")
    if (public_key is None) == (allowed_signers is None):
        raise ConfigError("--key: give the signer's public key (--key) or an allowed signers file, not both")
    result = Verification()
    if not (folder / MANIFEST_NAME).is_file():
        result.problems.append(f"{MANIFEST_NAME} missing: nothing to verify against")
        return result
    with tempfile.TemporaryDirectory(prefix="gatewatch-verify-") as tmp:
        if public_key is not None:
            try:
                key_line = public_key.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--key: cannot read public key {public_key}: {exc}") from None
            if not key_line.startswith(("ssh-", "ecdsa-", "sk-")):
                raise ConfigError(f"--key: {public_key} is not an SSH public key (ssh-ed25519 AAAA...)")
            allowed_signers = Path(tmp) / "allowed_signers"
            allowed_signers.write_text(f'{identity} namespaces="{NAMESPACE}" {key_line}\n', encoding="utf-8")
        assert allowed_signers is not None
        _check_signature(folder, allowed_signers, identity, result)
    _check_files(folder, result)
    return result
