"""XEP-0215: parsing the XEP's example result, choosing for aioice, refresh timing."""

import xml.etree.ElementTree as ET

from signalling.external_services import IceServers, choose, parse, refresh_delay

# XEP-0215 §3.2 example (services with credentials), with one malformed entry added.
EXAMPLE = """
<services xmlns='urn:xmpp:extdisco:2'>
  <service host='stun.shakespeare.lit' port='9998' transport='udp' type='stun'/>
  <service expires='2026-11-25T13:00:00Z' host='turn.shakespeare.lit'
           password='jj929jkj5sadjfj93v3n' port='9999' restricted='1' transport='tcp'
           type='turn' username='nb78932lkjlskjfdb7g8'/>
  <service expires='2026-11-25T13:00:00Z' host='turn.shakespeare.lit'
           password='jj929jkj5sadjfj93v3n' port='3478' restricted='1' transport='udp'
           type='turn' username='nb78932lkjlskjfdb7g8'/>
  <service host='broken.shakespeare.lit' port='http' type='stun'/>
</services>
"""


def test_parse_and_choose_prefers_udp():
    services = parse(ET.fromstring(EXAMPLE))
    assert len(services) == 3
    servers = choose(services)
    assert servers.stun == ("stun.shakespeare.lit", 9998)
    assert servers.turn == ("turn.shakespeare.lit", 3478) and servers.turn_transport == "udp"
    assert servers.turn_username == "nb78932lkjlskjfdb7g8"
    assert servers.expires is not None


def test_turn_without_credentials_is_dropped():
    services = parse(ET.fromstring(
        "<services xmlns='urn:xmpp:extdisco:2'><service host='t' port='3478' type='turn'/>"
        "</services>"))
    assert choose(services) == IceServers()


def test_refresh_before_expiry():
    servers = IceServers(turn=("t", 1), turn_username="u", turn_password="p", expires=1100.0)
    assert refresh_delay(servers, fetched_at=1000.0, now=1000.0) == 80.0
    assert refresh_delay(servers, fetched_at=1000.0, now=1079.5) == 1.0  # never below 1 s
    assert refresh_delay(IceServers(), 0.0, 0.0) is None


def test_turns_is_kept_as_the_last_resort():
    services = parse(ET.fromstring("""
<services xmlns='urn:xmpp:extdisco:2'>
  <service host='turn.example' port='3478' transport='udp' type='turn' username='u'
           password='p'/>
  <service host='turn.example' port='5349' transport='tcp' type='turns'/>
</services>"""))
    servers = choose(services)
    assert servers.turn == ("turn.example", 3478) and servers.turn_transport == "udp"
    assert servers.turns == ("turn.example", 5349)


def test_only_turns_on_offer_becomes_the_turn_server():
    servers = choose(parse(ET.fromstring("""
<services xmlns='urn:xmpp:extdisco:2'>
  <service host='turn.example' port='443' transport='tcp' type='turns' username='u'
           password='p'/>
</services>""")))
    assert servers.turn == ("turn.example", 443) and servers.turn_transport == "tls"
    assert servers.turns is None
