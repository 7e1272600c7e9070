"""Sealed one-time secrets: only the private key's holder opens them, nothing else does."""

import pytest

from fedimpute_shared.sealed import SealedSecretError, generate_keypair, open_sealed, seal


def test_a_sealed_secret_opens_with_the_private_key_only():
    private, public = generate_keypair()
    other_private, _ = generate_keypair()
    sealed = seal(public, "reset-token-123")
    assert "reset-token-123" not in sealed
    assert open_sealed(private, sealed) == "reset-token-123"
    with pytest.raises(SealedSecretError, match="not sealed to this key"):
        open_sealed(other_private, sealed)


def test_sealing_twice_gives_different_texts():
    _, public = generate_keypair()
    assert seal(public, "same") != seal(public, "same")


@pytest.mark.parametrize(
    ("sealed", "message"),
    [("not base64 !", "not base64"), ("A" * 5000, "too long"), ("AAAA", "not sealed")],
)
def test_malformed_sealed_values_are_refused_clearly(sealed, message):
    private, _ = generate_keypair()
    with pytest.raises(SealedSecretError, match=message):
        open_sealed(private, sealed)


def test_a_key_of_the_wrong_size_is_refused():
    with pytest.raises(SealedSecretError, match="32 bytes"):
        seal("AAAA", "x")
