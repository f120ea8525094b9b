from signalling.contacts import OnlineResource, choose_resource

JINGLE = frozenset({"urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:1"})


def test_highest_priority_supporting_resource_wins():
    chosen = choose_resource([
        OnlineResource("bob@x/phone", 10, features=frozenset({"urn:xmpp:jingle:1"})),
        OnlineResource("bob@x/laptop", 5, features=JINGLE),
        OnlineResource("bob@x/desk", 1, features=JINGLE),
    ], JINGLE)
    assert chosen == "bob@x/laptop"


def test_none_online_or_supporting():
    assert choose_resource([], JINGLE) is None
    assert choose_resource([OnlineResource("bob@x/web", 5)], JINGLE) is None


def test_negative_priority_is_never_chosen():
    assert choose_resource([OnlineResource("bob@x/bot", -1, features=JINGLE)], JINGLE) is None


def test_ties_prefer_available_then_jid():
    chosen = choose_resource([
        OnlineResource("bob@x/b", 0, "away", JINGLE),
        OnlineResource("bob@x/c", 0, "", JINGLE),
        OnlineResource("bob@x/a", 0, "dnd", JINGLE),
    ], JINGLE)
    assert chosen == "bob@x/c"
