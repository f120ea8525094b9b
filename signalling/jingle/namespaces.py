"""XML namespaces of the XEPs the Jingle core speaks."""

JINGLE = "urn:xmpp:jingle:1"  # XEP-0166 §12
JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"  # XEP-0166 §8
RTP = "urn:xmpp:jingle:apps:rtp:1"  # XEP-0167
RTP_AUDIO = "urn:xmpp:jingle:apps:rtp:audio"  # XEP-0167 §11 (disco feature)
RTP_INFO = "urn:xmpp:jingle:apps:rtp:info:1"  # XEP-0167 §7
ICE_UDP = "urn:xmpp:jingle:transports:ice-udp:1"  # XEP-0176
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3
CLIENT = "jabber:client"
FILE_TRANSFER = "urn:xmpp:jingle:apps:file-transfer:5"  # XEP-0234
HASHES = "urn:xmpp:hashes:2"  # XEP-0300
S5B = "urn:xmpp:jingle:transports:s5b:1"  # XEP-0260
IBB = "urn:xmpp:jingle:transports:ibb:1"  # XEP-0261
DTLS = "urn:xmpp:jingle:apps:dtls:0"  # XEP-0320
JMI = "urn:xmpp:jingle-message:0"  # XEP-0353 (0.1-0.3 and again since 0.6)
JMI_1 = "urn:xmpp:jingle-message:1"  # XEP-0353 0.4-0.5 (Monal): understood, not sent
CARBONS = "urn:xmpp:carbons:2"  # XEP-0280
FORWARD = "urn:xmpp:forward:0"  # XEP-0297
HINTS = "urn:xmpp:hints"  # XEP-0334
RECEIPTS = "urn:xmpp:receipts"  # XEP-0184: Conversations shows "ringing" on the receipt
