"""Key tooling: `edgefleet broker config` provisions the signing keys and the gateways'
trust anchor; `edgefleet keys rotate` makes chains a gateway follows (by the current key,
or afresh from the root key), and names a bad key file instead of crashing."""

from __future__ import annotations

import stat
from pathlib import Path

import typer
from edgefleet_agent.core.admission import Reject
from edgefleet_agent.security.trust import TrustState, Verified, verify
from edgefleet_cli.commands import broker as cli_broker
from edgefleet_cli.commands import keys as cli_keys
from edgefleet_orchestrator.security.signer import Signer, load_signer, sign_document
from edgefleet_protocol import Desired, encode
from edgefleet_protocol.signing import TrustAnchor
from typer.testing import CliRunner


def run(*args: str) -> tuple[int, str]:
    root = typer.Typer()
    root.add_typer(cli_broker.app, name="broker")
    root.add_typer(cli_keys.app, name="keys")
    result = CliRunner().invoke(root, list(args))
    return result.exit_code, result.output


def provision(tmp_path: Path) -> Path:
    out = tmp_path / "set"
    code, output = run("broker", "config", "--out", str(out), "--node", "s1/n1")
    assert code == 0, output
    return out


def signer_in(keys_dir: Path) -> Signer:
    chain = keys_dir / "orchestrator.chain.json"
    return load_signer(
        (keys_dir / "orchestrator.key").read_bytes(),
        chain.read_bytes() if chain.exists() else None,
    )


def check(anchor: TrustAnchor, signer: Signer) -> object:
    doc = Desired(node="n1", site="s1", generation=1, issued_at=1.0)
    state = TrustState(anchor, anchor.orchestrator)
    return verify(encode(sign_document(doc, signer)), state=state, node="n1", site="s1",
                  held=None)  # fmt: skip


def test_provisioning_writes_private_keys_a_public_anchor_and_points_clients_at_them(
    tmp_path: Path,
) -> None:
    out = provision(tmp_path)
    for name in ("keys/root.key", "keys/orchestrator.key"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((out / "keys/trust-anchor.json").stat().st_mode) == 0o644
    anchor = TrustAnchor.model_validate_json((out / "keys/trust-anchor.json").read_text())
    assert isinstance(check(anchor, signer_in(out / "keys")), Verified)
    assert (
        "EDGEFLEET_TRUST_ANCHOR='/etc/edgefleet/trust-anchor.json'"
        in (out / "clients/s1.n1.env").read_text()
    )
    assert (
        "EDGEFLEET_SIGNING_KEY='/etc/edgefleet/orchestrator.key'"
        in (out / "clients/orchestrator.env").read_text()
    )


def test_rotations_by_the_current_key_and_by_the_root_are_followed(tmp_path: Path) -> None:
    out = provision(tmp_path)
    keys_dir = out / "keys"
    anchor = TrustAnchor.model_validate_json((keys_dir / "trust-anchor.json").read_text())
    first = signer_in(keys_dir)
    for by in ("current", "current", "root"):
        code, output = run("keys", "rotate", "--keys", str(keys_dir), "--by", by)
        assert code == 0, output
        rotated = signer_in(keys_dir)
        assert rotated.key_id != first.key_id
        verdict = check(anchor, rotated)
        assert isinstance(verdict, Verified), verdict
        assert verdict.rotated
    assert len(rotated.chain) == 1  # by root: the chain starts afresh
    assert (keys_dir / f"orchestrator.key.{first.key_id}.retired").exists()


def test_a_rotation_chain_from_a_foreign_key_is_not_followed(tmp_path: Path) -> None:
    out, other = provision(tmp_path / "a"), provision(tmp_path / "b")
    anchor = TrustAnchor.model_validate_json((out / "keys/trust-anchor.json").read_text())
    assert run("keys", "rotate", "--keys", str(other / "keys"))[0] == 0
    verdict = check(anchor, signer_in(other / "keys"))
    assert isinstance(verdict, Reject)
    assert verdict.field == "key_id"


def test_rotate_names_a_bad_key_file_and_a_bad_choice(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "orchestrator.key").write_text("not a key")
    code, output = run("keys", "rotate", "--keys", str(keys_dir))
    assert code == 2
    assert "is not a PEM private key" in output
    code, output = run("keys", "rotate", "--keys", str(keys_dir), "--by", "friend")
    assert code == 2
    assert "--by must be current or root" in output
    code, output = run("keys", "rotate", "--keys", str(tmp_path / "nowhere"))
    assert code == 2
    assert "cannot read" in output
