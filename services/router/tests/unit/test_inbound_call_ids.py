from switchboard_router.inbound import call_ids

SIGNED = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"},
          "extra_content": {"google": {"thought_signature": "CiQB+/9x=="}}}


def test_a_signature_rides_in_the_id_and_comes_back_whole():
    shown = call_ids.outgoing(SIGNED)
    assert shown.startswith("call_1") and all(c.isalnum() or c in "_-" for c in shown)
    assert call_ids.incoming(shown) == ("call_1", SIGNED["extra_content"])
    assert call_ids.call_id_only(shown) == "call_1"


def test_ids_without_a_signature_pass_unchanged():
    plain = {"id": "toolu_abc", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert call_ids.outgoing(plain) == "toolu_abc"
    assert call_ids.incoming("toolu_abc") == ("toolu_abc", None)
    assert call_ids.incoming("x__sig_%%%") == ("x__sig_%%%", None)  # not ours: left alone
