"""Fan tokens: verified once, remembered until they expire, never past it."""

from __future__ import annotations

import time
import uuid

import pytest

from vibethink.chat import tokens
from vibethink.chat.tokens import FanTokens
from vibethink.core.errors import InvalidFanToken

SECRET = "a-secret-key-long-enough-for-the-tests-0123456789"


def test_a_token_reads_back_as_its_fan_and_again_from_memory() -> None:
    signer = FanTokens(SECRET, 60)
    tenant, deployment = uuid.uuid4(), uuid.uuid4()
    issued = signer.issue(tenant_id=tenant, deployment_id=deployment)
    first = signer.read(issued.token)
    assert (first.fan_key, first.tenant_id, first.deployment_id) == (issued.fan_key, tenant, deployment)
    assert signer.read(issued.token) is first


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = FanTokens(SECRET, 60)
    issued = signer.issue(tenant_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    signer.read(issued.token)
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(InvalidFanToken):
        signer.read(issued.token)


def test_another_secret_never_accepts_it_even_after_the_first_signer_remembered_it() -> None:
    issued = FanTokens(SECRET, 60).issue(tenant_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    signer = FanTokens(SECRET, 60)
    signer.read(issued.token)
    with pytest.raises(InvalidFanToken):
        FanTokens(SECRET + "-other", 60).read(issued.token)


def test_a_tampered_token_is_refused_every_time() -> None:
    signer = FanTokens(SECRET, 60)
    issued = signer.issue(tenant_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    tampered = issued.token[:-2] + ("AA" if not issued.token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(InvalidFanToken):
            signer.read(tampered)


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CAPACITY", 3)
    signer = FanTokens(SECRET, 60)
    for _ in range(10):
        signer.read(signer.issue(tenant_id=uuid.uuid4(), deployment_id=uuid.uuid4()).token)
    assert len(signer._verified) <= 3
