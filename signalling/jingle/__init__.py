"""The pure Jingle core (XEP-0166 and its applications): no I/O, no clock, no slixmpp."""
