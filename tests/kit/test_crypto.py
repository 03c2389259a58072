"""Field encryption (AES-256-GCM tokens, key rotation, context binding) and blind indexes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
import threading
from pathlib import Path

import pytest

from crmkit.crypto import (
    DEVELOPMENT_KEY_ID,
    DecryptionError,
    FieldCipher,
    KeyringError,
    decode_key,
    development_keys,
    generate_key,
)

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
INDEX_KEY = bytes(range(64, 96))
TOKEN_PATTERN = re.compile(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": K1}, "k1", INDEX_KEY)


def _flip(token: str, position: int) -> str:
    """The token with one payload character changed to another base64url character."""
    header, payload = token.rsplit(".", 1)
    replacement = "A" if payload[position] != "A" else "B"
    return f"{header}.{payload[:position]}{replacement}{payload[position + 1 :]}"


# --- encryption ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    ["110101199003074578", "张三", "北京市朝阳区建国路88号 Room 1201", "", "emoji 🙂 and\nnewline"],
)
def test_round_trip(cipher: FieldCipher, plaintext: str) -> None:
    token = cipher.encrypt(plaintext)
    assert cipher.decrypt(token) == plaintext


def test_token_is_compact_ascii_and_names_its_key(cipher: FieldCipher) -> None:
    token = cipher.encrypt("13812345678")
    assert token.isascii()
    assert TOKEN_PATTERN.fullmatch(token)
    assert token.startswith("v1.k1.")
    payload = token.split(".")[2]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    # 12-byte nonce + 11 bytes of ciphertext + 16-byte tag.
    assert len(raw) == 12 + len(b"13812345678") + 16
    assert "13812345678" not in token


def test_two_encryptions_of_the_same_value_differ(cipher: FieldCipher) -> None:
    tokens = {cipher.encrypt("张三") for _ in range(20)}
    assert len(tokens) == 20
    nonces = {base64.urlsafe_b64decode(t.split(".")[2] + "==")[:12] for t in tokens}
    assert len(nonces) == 20
    assert {cipher.decrypt(t) for t in tokens} == {"张三"}


@pytest.mark.parametrize("position", [0, 5, 11, 16, 20, 30, 40])
def test_tampered_payload_is_refused(cipher: FieldCipher, position: int) -> None:
    token = cipher.encrypt("110101199003074578")
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(_flip(token, position))


def test_every_changed_payload_character_is_refused(cipher: FieldCipher) -> None:
    token = cipher.encrypt("张三")
    payload_length = len(token.rsplit(".", 1)[1])
    for position in range(payload_length):
        with pytest.raises(DecryptionError):
            cipher.decrypt(_flip(token, position))


def test_non_canonical_payload_is_refused(cipher: FieldCipher) -> None:
    token = cipher.encrypt("张三")
    header, payload = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    # 34 bytes leave 4 unused low bits in the last character: setting one decodes the same bytes.
    assert len(raw) % 3 == 1
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(payload[-1])
    assert last & 0b1111 == 0
    altered = payload[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(altered + "==") == raw
    with pytest.raises(DecryptionError, match="not base64url"):
        cipher.decrypt(f"{header}.{altered}")


def test_truncated_and_malformed_tokens_are_refused(cipher: FieldCipher) -> None:
    token = cipher.encrypt("张三")
    header, payload = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    truncated = base64.urlsafe_b64encode(raw[:-3]).rstrip(b"=").decode()
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(f"{header}.{truncated}")
    with pytest.raises(DecryptionError, match="too short"):
        cipher.decrypt("v1.k1.AAAA")
    with pytest.raises(DecryptionError, match="not base64url"):
        cipher.decrypt("v1.k1." + "+" * 40)
    with pytest.raises(DecryptionError, match="not base64url"):
        cipher.decrypt("v1.k1." + "A" * 41)
    with pytest.raises(DecryptionError, match="the form"):
        cipher.decrypt("not a token")
    with pytest.raises(DecryptionError, match="the form"):
        cipher.decrypt(token + ".extra")
    with pytest.raises(DecryptionError, match="unsupported token version 'v2'"):
        cipher.decrypt("v2" + token[2:])


def test_token_relabelled_with_another_key_is_refused() -> None:
    both = FieldCipher({"k1": K1, "k2": K2}, "k1", INDEX_KEY)
    token = both.encrypt("张三")
    with pytest.raises(DecryptionError, match="failed authentication"):
        both.decrypt(token.replace("v1.k1.", "v1.k2.", 1))


def test_context_is_bound_as_associated_data(cipher: FieldCipher) -> None:
    token = cipher.encrypt("110101199003074578", context="customer.resident_id")
    assert cipher.decrypt(token, context="customer.resident_id") == "110101199003074578"
    with pytest.raises(DecryptionError, match="another context"):
        cipher.decrypt(token, context="customer.phone")
    with pytest.raises(DecryptionError, match="another context"):
        cipher.decrypt(token)
    without_context = cipher.encrypt("110101199003074578")
    with pytest.raises(DecryptionError, match="another context"):
        cipher.decrypt(without_context, context="customer.resident_id")


# --- key rotation -------------------------------------------------------------------------------


def test_token_of_an_old_key_decrypts_after_rotation() -> None:
    before = FieldCipher({"k1": K1}, "k1", INDEX_KEY)
    old_token = before.encrypt("张三", context="customer.name")
    after = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX_KEY)
    assert after.active_key_id == "k2"
    assert after.decrypt(old_token, context="customer.name") == "张三"
    new_token = after.encrypt("张三", context="customer.name")
    assert new_token.startswith("v1.k2.")
    assert after.decrypt(new_token, context="customer.name") == "张三"
    # The cipher that has not learnt k2 yet cannot read the new token.
    with pytest.raises(DecryptionError, match="unknown key id 'k2'"):
        before.decrypt(new_token, context="customer.name")


def test_unknown_key_id_is_refused() -> None:
    token = FieldCipher({"k1": K1}, "k1", INDEX_KEY).encrypt("张三")
    retired = FieldCipher({"k2": K2}, "k2", INDEX_KEY)
    with pytest.raises(DecryptionError, match="unknown key id 'k1'"):
        retired.decrypt(token)


def test_same_id_with_another_key_does_not_decrypt() -> None:
    token = FieldCipher({"k1": K1}, "k1", INDEX_KEY).encrypt("张三")
    with pytest.raises(DecryptionError, match="failed authentication"):
        FieldCipher({"k1": K2}, "k1", INDEX_KEY).decrypt(token)


# --- blind index --------------------------------------------------------------------------------


def test_blind_index_is_deterministic_hmac_sha256(cipher: FieldCipher) -> None:
    index = cipher.blind_index("110101199003074578", purpose="customer.resident_id")
    assert index == cipher.blind_index("110101199003074578", purpose="customer.resident_id")
    assert re.fullmatch(r"[0-9a-f]{64}", index)
    expected = hmac.new(
        INDEX_KEY, b"customer.resident_id\x00110101199003074578", hashlib.sha256
    ).hexdigest()
    assert index == expected


def test_blind_index_differs_by_value_purpose_and_key(cipher: FieldCipher) -> None:
    base = cipher.blind_index("13812345678", purpose="customer.phone")
    assert base != cipher.blind_index("13812345679", purpose="customer.phone")
    assert base != cipher.blind_index("13812345678", purpose="customer.contact_phone")
    other_key = FieldCipher({"k1": K1}, "k1", bytes(range(100, 132)))
    assert base != other_key.blind_index("13812345678", purpose="customer.phone")


def test_blind_index_does_not_depend_on_the_encryption_keys(cipher: FieldCipher) -> None:
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX_KEY)
    assert cipher.blind_index("张三", purpose="customer.name") == rotated.blind_index(
        "张三", purpose="customer.name"
    )


@pytest.mark.parametrize("purpose", ["", "customer\x00phone"])
def test_blind_index_purpose_must_be_unambiguous(cipher: FieldCipher, purpose: str) -> None:
    with pytest.raises(ValueError, match="purpose"):
        cipher.blind_index("x", purpose=purpose)


# --- configuration ------------------------------------------------------------------------------


def test_generate_key_gives_fresh_32_byte_standard_base64_keys() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(base64.b64decode(first, validate=True)) == 32
    assert decode_key(first) == base64.b64decode(first)


def test_from_config_parses_the_keyring() -> None:
    k1 = base64.b64encode(K1).decode()
    k2_urlsafe = base64.urlsafe_b64encode(K2).decode()
    index = base64.b64encode(INDEX_KEY).decode()
    configured = FieldCipher.from_config(f" k1:{k1} , k2:{k2_urlsafe}", "k2", index)
    direct = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX_KEY)
    assert configured.active_key_id == "k2"
    assert configured.decrypt(direct.encrypt("张三")) == "张三"
    assert direct.decrypt(configured.encrypt("张三")) == "张三"
    assert direct.decrypt(FieldCipher({"k1": K1}, "k1", INDEX_KEY).encrypt("x")) == "x"
    assert configured.blind_index("x", purpose="p") == direct.blind_index("x", purpose="p")


@pytest.mark.parametrize(
    ("keyring", "active", "index", "reason"),
    [
        ("", "k1", "INDEX", "entry 1 must be written"),
        ("k1", "k1", "INDEX", "entry 1 must be written"),
        ("k1:K1,", "k1", "INDEX", "entry 2 must be written"),
        (":K1", "k1", "INDEX", "entry 1 must be written"),
        ("k1:K1,k1:K2", "k1", "INDEX", "'k1' appears twice"),
        ("k1:not base64!", "k1", "INDEX", "key k1 is not valid base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "k1", "INDEX", "must be 32 bytes, got 16"),
        ("k1:K1", "k3", "INDEX", "active key 'k3' is not in the keyring"),
        ("k.1:K1", "k.1", "INDEX", "key id 'k.1' must be"),
        ("k1:K1", "k1", "AAAA", "index key must be 32 bytes, got 3"),
    ],
)
def test_from_config_refuses_bad_keyrings(
    keyring: str, active: str, index: str, reason: str
) -> None:
    encoded = {
        "K1": base64.b64encode(K1).decode(),
        "K2": base64.b64encode(K2).decode(),
        "INDEX": base64.b64encode(INDEX_KEY).decode(),
    }
    keyring = keyring.replace("K1", encoded["K1"]).replace("K2", encoded["K2"])
    index = encoded.get(index, index)
    with pytest.raises(KeyringError, match=reason) as caught:
        FieldCipher.from_config(keyring, active, index)
    assert encoded["K1"] not in str(caught.value)


def test_constructor_refuses_bad_keys() -> None:
    with pytest.raises(KeyringError, match="empty"):
        FieldCipher({}, "k1", INDEX_KEY)
    with pytest.raises(KeyringError, match="must be 32 bytes, got 16"):
        FieldCipher({"k1": bytes(16)}, "k1", INDEX_KEY)
    with pytest.raises(KeyringError, match="index key"):
        FieldCipher({"k1": K1}, "k1", bytes(16))


def test_repr_shows_key_ids_but_not_keys() -> None:
    text = repr(FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX_KEY))
    assert "'k1'" in text and "'k2'" in text
    for key in (K1, K2, INDEX_KEY):
        assert key.hex() not in text
        assert base64.b64encode(key).decode() not in text
        assert repr(key) not in text


# --- development keys ---------------------------------------------------------------------------


def test_development_keys_are_created_once_with_mode_0600(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "keys"
    encryption_key, index_key = development_keys(directory)
    path = directory / "field-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decode_key(encryption_key) != decode_key(index_key)
    assert json.loads(path.read_text()) == {
        "encryption_key": encryption_key,
        "index_key": index_key,
    }
    content, modified = path.read_bytes(), path.stat().st_mtime_ns
    assert development_keys(directory) == (encryption_key, index_key)
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == modified
    assert sorted(p.name for p in directory.iterdir()) == ["field-keys.json"]


def test_development_keys_differ_between_directories(tmp_path: Path) -> None:
    assert development_keys(tmp_path / "a") != development_keys(tmp_path / "b")


def test_services_starting_together_get_the_same_development_keys(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    start = threading.Barrier(8)
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def load() -> None:
        start.wait()
        try:
            results.append(development_keys(directory))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert sorted(p.name for p in directory.iterdir()) == ["field-keys.json"]


def test_development_cipher_reads_its_own_tokens_across_restarts(tmp_path: Path) -> None:
    first = FieldCipher.for_development(tmp_path)
    assert first.active_key_id == DEVELOPMENT_KEY_ID
    token = first.encrypt("张三", context="customer.name")
    second = FieldCipher.for_development(tmp_path)
    assert second.decrypt(token, context="customer.name") == "张三"
    assert first.blind_index("张三", purpose="p") == second.blind_index("张三", purpose="p")


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", '{"encryption_key": 1, "index_key": 2}', '{"encryption_key": "AA=="}'],
)
def test_corrupt_development_keys_file_is_reported(tmp_path: Path, content: str) -> None:
    (tmp_path / "field-keys.json").write_text(content)
    with pytest.raises(KeyringError, match="not a development keys file"):
        development_keys(tmp_path)


def test_development_keys_file_with_a_short_key_is_reported(tmp_path: Path) -> None:
    short = base64.b64encode(bytes(8)).decode()
    (tmp_path / "field-keys.json").write_text(
        json.dumps({"encryption_key": short, "index_key": generate_key()})
    )
    with pytest.raises(KeyringError, match="must be 32 bytes, got 8"):
        development_keys(tmp_path)
