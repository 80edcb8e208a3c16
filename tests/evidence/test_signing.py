"""Signed evidence: ``gatewatch evidence verify`` catches edits, deletions, additions and a rewritten
manifest, with a throwaway SSH key and the real ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gatewatch.evidence.signing import SIGNATURE_NAME, sign_manifest, verify_bundle, write_manifest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="openssh-client not installed")


def make_key(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def make_bundle(folder: Path, key: Path) -> Path:
    bundle = folder / "bundle"
    (bundle / "series").mkdir(parents=True)
    (bundle / "verdict.json").write_text('{"verdict": "pass"}\n')
    (bundle / "report.html").write_text("<p>PASS</p>\n")
    (bundle / "series" / "memory.json").write_text("[]\n")
    write_manifest(bundle)
    sign_manifest(bundle, key)
    return bundle


def verify_cli(bundle: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatewatch", "evidence", "verify", str(bundle), "--key",
                           str(public_key)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    return make_key(folder, "operator"), make_key(folder, "someone-else")


def test_intact_bundle_verifies(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    operator, _ = keys
    bundle = make_bundle(tmp_path, operator)
    assert (bundle / SIGNATURE_NAME).is_file()
    result = verify_cli(bundle, operator.with_suffix(".pub"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INTACT" in result.stdout and "3 file(s)" in result.stdout


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("edit", "verdict.json: content differs from the manifest (edited)"),
        ("delete", "series/memory.json: listed in the manifest but missing (deleted)"),
        ("add", "extra.txt: not in the manifest (added after signing)"),
        ("rewrite manifest", "signature does not verify"),
        ("drop signature", "MANIFEST.sha256.sig missing: the bundle is not signed"),
    ],
)
def test_tampering_is_caught(tmp_path: Path, keys: tuple[Path, Path], tamper: str, expected: str) -> None:
    operator, _ = keys
    bundle = make_bundle(tmp_path, operator)
    signature = (bundle / SIGNATURE_NAME).read_bytes()
    if tamper == "edit":
        (bundle / "verdict.json").write_text('{"verdict": "pass", "edited": true}\n')
    elif tamper == "delete":
        (bundle / "series" / "memory.json").unlink()
    elif tamper == "add":
        (bundle / "extra.txt").write_text("added\n")
    elif tamper == "rewrite manifest":  # edit a file and write a matching manifest, keep the old signature
        (bundle / "verdict.json").write_text('{"verdict": "pass", "edited": true}\n')
        write_manifest(bundle)
        (bundle / SIGNATURE_NAME).write_bytes(signature)
    else:
        (bundle / SIGNATURE_NAME).unlink()
    result = verify_cli(bundle, operator.with_suffix(".pub"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout and "NOT INTACT" in result.stdout


def test_another_key_does_not_verify(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    operator, other = keys
    bundle = make_bundle(tmp_path, operator)
    assert not verify_bundle(bundle, public_key=other.with_suffix(".pub")).ok
    resigned = make_bundle(tmp_path / "again", other)  # a bundle re-signed by someone else
    assert not verify_bundle(resigned, public_key=operator.with_suffix(".pub")).ok


def test_bad_input_exits_2(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    operator, _ = keys
    result = verify_cli(tmp_path / "nowhere", operator.with_suffix(".pub"))
    assert result.returncode == 2 and "no such evidence folder" in result.stderr
    bundle = make_bundle(tmp_path, operator)
    result = verify_cli(bundle, operator)  # the private key given where the public one belongs
    assert result.returncode == 2 and "--key" in result.stderr
