"""Unit and property tests for app.redaction."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from app.redaction import MASK, REDACTOR, Redactor

SECRET = "sk-CANARY-4f9a"


def test_plain_secret_is_masked_everywhere() -> None:
    r = Redactor([SECRET])
    assert r.redact(f"key={SECRET} again {SECRET}.") == f"key={MASK} again {MASK}."


def test_text_without_secret_is_returned_unchanged() -> None:
    r = Redactor([SECRET])
    text = "order_submitted symbol=BTCUSDT"
    assert r.redact(text) is text


def test_no_secret_fast_path() -> None:
    r = Redactor()
    text = "anything at all **********"
    assert r.redact(text) is text
    assert r.redact_obj({"a": [text]}) == {"a": [text]}


def test_empty_secrets_are_ignored() -> None:
    r = Redactor(["", ""])
    r.add("")
    assert r.redact("abc") == "abc"


def test_secret_containing_another_is_fully_masked() -> None:
    r = Redactor(["abcd", "abcdefgh"])
    assert r.redact("x abcdefgh y abcd z") == f"x {MASK} y {MASK} z"


def test_overlapping_secrets_leave_no_fragment() -> None:
    r = Redactor(["abcdef", "defghi"])
    # Leftmost-first alternation alone would leave "ghi" visible.
    assert r.redact("<abcdefghi>") == f"<{MASK}>"
    assert r.redact("<defghi abcdef>") == f"<{MASK} {MASK}>"


def test_mask_next_to_text_cannot_complete_a_starry_secret() -> None:
    r = Redactor(["**ab"])
    out = r.redact("**abab")
    assert "**ab" not in out
    assert "ab" not in out


def test_url_encoded_form_is_masked() -> None:
    secret = "p@ss/w0rd+&="
    r = Redactor([secret])
    encoded = quote(secret, safe="")
    assert encoded != secret
    out = r.redact(f"GET /api?signature=x&password={encoded}&b=1")
    assert encoded not in out
    assert f"password={MASK}&b=1" in out


def test_json_escaped_form_is_masked() -> None:
    secret = 'pa"ss\\wörd'
    r = Redactor([secret])
    doc = json.dumps({"password": secret})  # ensure_ascii: ö → \u00f6, " → \"
    assert secret not in doc
    out = r.redact(doc)
    assert json.loads(out) == {"password": MASK}
    doc_utf8 = json.dumps({"password": secret}, ensure_ascii=False)
    assert json.loads(r.redact(doc_utf8)) == {"password": MASK}


def test_repr_form_is_masked() -> None:
    secret = "it's\\secret"
    r = Redactor([secret])
    assert r.redact(repr({"k": secret})) == f"{{'k': \"{MASK}\"}}"
    assert secret not in r.redact(str(KeyError(secret)))


def test_redact_obj_deep_and_new_containers() -> None:
    r = Redactor([SECRET])
    doc: dict[str, Any] = {
        "api": {"key": SECRET, "nested": [1, f"x{SECRET}y", (SECRET, None)]},
        SECRET: 2.5,
        "ok": True,
    }
    out = r.redact_obj(doc)
    assert out == {
        "api": {"key": MASK, "nested": [1, f"x{MASK}y", (MASK, None)]},
        MASK: 2.5,
        "ok": True,
    }
    assert out is not doc
    assert doc["api"]["key"] == SECRET  # the input is not mutated
    assert SECRET not in json.dumps(out)


def test_redact_obj_leaves_other_objects_alone() -> None:
    r = Redactor([SECRET])
    marker = object()
    assert r.redact_obj(marker) is marker
    assert r.redact_obj(42) == 42


def test_wrap_stream_redacts_writes_and_delegates() -> None:
    r = Redactor([SECRET])
    raw = io.StringIO()
    wrapped = r.wrap_stream(raw)
    print("token", SECRET, file=wrapped)
    assert wrapped.write(f"[{SECRET}]") == len(SECRET) + 2
    wrapped.writelines([SECRET, "\n"])
    wrapped.flush()
    assert raw.getvalue() == f"token {MASK}\n[{MASK}]{MASK}\n"
    assert wrapped.isatty() is False
    assert wrapped.encoding == raw.encoding
    assert wrapped.getvalue() == raw.getvalue()  # type: ignore[attr-defined]  # __getattr__


def test_wrap_stream_fileno_delegates(tmp_path: Path) -> None:
    with (tmp_path / "out.txt").open("w", encoding="utf-8") as f:
        wrapped = Redactor([SECRET]).wrap_stream(f)
        assert wrapped.fileno() == f.fileno()
        assert wrapped.encoding == "utf-8"
        wrapped.write(SECRET)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == MASK


def test_wrap_stream_sees_secrets_added_later() -> None:
    r = Redactor()
    raw = io.StringIO()
    wrapped = r.wrap_stream(raw)
    r.add(SECRET)
    wrapped.write(SECRET)
    assert raw.getvalue() == MASK


def test_add_is_thread_safe() -> None:
    r = Redactor()
    secrets = [f"secret-{i:03d}-xyz" for i in range(200)]

    def add(chunk: list[str]) -> None:
        for s in chunk:
            r.add(s)
            r.redact(s)  # readers run concurrently with writers

    threads = [threading.Thread(target=add, args=(secrets[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = r.redact(" ".join(secrets))
    assert out == " ".join([MASK] * len(secrets))


def test_process_wide_instance_exists() -> None:
    assert isinstance(REDACTOR, Redactor)


# Secrets with at least one non-'*' character: a secret made only of stars is the mask itself.
_secrets = st.text(min_size=4, max_size=40).filter(lambda s: s.strip("*") != "")


@given(prefix=st.text(max_size=60), secret=_secrets, suffix=st.text(max_size=60))
def test_secret_never_survives(prefix: str, secret: str, suffix: str) -> None:
    r = Redactor([secret])
    out = r.redact(prefix + secret + suffix)
    assert secret not in out
    assert MASK in out


@given(
    secret=_secrets,
    other=_secrets,
    parts=st.lists(st.sampled_from(["a", "*", " ", '"', "%", "\\", "x"]), max_size=6),
)
def test_two_secrets_and_encodings_never_survive(secret: str, other: str, parts: list[str]) -> None:
    r = Redactor([secret, other])
    # Interleave the secrets (raw, URL-encoded, JSON-escaped), overlapping them at the joints.
    pieces = [secret, *parts, quote(other, safe=""), secret[: len(secret) // 2] + other]
    pieces.append(json.dumps(secret)[1:-1])
    out = r.redact("".join(pieces))
    for s in (secret, other):
        assert s not in out
        assert quote(s, safe="") not in out
        assert json.dumps(s)[1:-1] not in out
