"""The reply-topic rule per operator (#12 defect 5): a command's reply may only go into
its sender's own ``replies/<operator>/`` subtree, the one only its account can read."""

from __future__ import annotations

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.commands import check_reply_to

ROOT = "edgefleet/v1"


@pytest.mark.parametrize(
    "reply_to",
    [f"{ROOT}/replies/alice/1", f"{ROOT}/replies/alice/deep/er"],
)
def test_an_operator_may_name_a_reply_topic_in_its_own_subtree(reply_to: str) -> None:
    assert check_reply_to(ROOT, reply_to, "alice") == reply_to


@pytest.mark.parametrize(
    "reply_to",
    [
        f"{ROOT}/replies/bob/1",  # another operator's replies
        f"{ROOT}/replies/alice",  # the subtree itself, no level below it
        f"{ROOT}/replies/alicex/1",  # a name that only starts like hers
        f"{ROOT}/replies/alice/",  # an empty level
        f"{ROOT}/fleet/summary",
    ],
)
def test_an_operator_cannot_aim_a_reply_anywhere_else(reply_to: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_reply_to(ROOT, reply_to, "alice")
    assert info.value.field == "reply_to"


def test_an_accountless_command_may_reply_anywhere_under_replies() -> None:
    # The dev config's anonymous operator keeps the rule every client used before.
    assert check_reply_to(ROOT, f"{ROOT}/replies/bob/1") == f"{ROOT}/replies/bob/1"
    with pytest.raises(ProtocolError):
        check_reply_to(ROOT, f"{ROOT}/fleet/summary")
