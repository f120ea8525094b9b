"""Enumerations of the Jingle core: session states, actions, reasons, roles."""

from __future__ import annotations

import enum


class SessionState(enum.StrEnum):
    """libjingle's ``Session::State`` names, reported verbatim on the control socket.

    XEP-0166 §5.1 has three states (PENDING, ACTIVE, ENDED); libjingle's finer
    names say who did what last, which is what a user interface needs.
    SENTPRACCEPT, RECEIVEDPRACCEPT and SENTREDIRECT are reserved: XEP-0166 has
    no provisional accept, and redirects are answered as IQ errors.
    """

    INIT = "INIT"
    SENTINITIATE = "SENTINITIATE"
    RECEIVEDINITIATE = "RECEIVEDINITIATE"
    SENTPRACCEPT = "SENTPRACCEPT"
    SENTACCEPT = "SENTACCEPT"
    RECEIVEDPRACCEPT = "RECEIVEDPRACCEPT"
    RECEIVEDACCEPT = "RECEIVEDACCEPT"
    SENTMODIFY = "SENTMODIFY"
    RECEIVEDMODIFY = "RECEIVEDMODIFY"
    SENTREJECT = "SENTREJECT"
    RECEIVEDREJECT = "RECEIVEDREJECT"
    SENTREDIRECT = "SENTREDIRECT"
    SENTTERMINATE = "SENTTERMINATE"
    RECEIVEDTERMINATE = "RECEIVEDTERMINATE"
    INPROGRESS = "INPROGRESS"
    DEINIT = "DEINIT"


class Action(enum.StrEnum):
    """The 'action' attribute values of XEP-0166 §7.2."""

    CONTENT_ACCEPT = "content-accept"
    CONTENT_ADD = "content-add"
    CONTENT_MODIFY = "content-modify"
    CONTENT_REJECT = "content-reject"
    CONTENT_REMOVE = "content-remove"
    DESCRIPTION_INFO = "description-info"
    SECURITY_INFO = "security-info"
    SESSION_ACCEPT = "session-accept"
    SESSION_INFO = "session-info"
    SESSION_INITIATE = "session-initiate"
    SESSION_TERMINATE = "session-terminate"
    TRANSPORT_ACCEPT = "transport-accept"
    TRANSPORT_INFO = "transport-info"
    TRANSPORT_REJECT = "transport-reject"
    TRANSPORT_REPLACE = "transport-replace"


class Reason(enum.StrEnum):
    """The <reason/> conditions of XEP-0166 §7.4."""

    ALTERNATIVE_SESSION = "alternative-session"
    BUSY = "busy"
    CANCEL = "cancel"
    CONNECTIVITY_ERROR = "connectivity-error"
    DECLINE = "decline"
    EXPIRED = "expired"
    FAILED_APPLICATION = "failed-application"
    FAILED_TRANSPORT = "failed-transport"
    GENERAL_ERROR = "general-error"
    GONE = "gone"
    INCOMPATIBLE_PARAMETERS = "incompatible-parameters"
    MEDIA_ERROR = "media-error"
    SECURITY_ERROR = "security-error"
    SUCCESS = "success"
    TIMEOUT = "timeout"
    UNSUPPORTED_APPLICATIONS = "unsupported-applications"
    UNSUPPORTED_TRANSPORTS = "unsupported-transports"


class Role(enum.StrEnum):
    """Our side of a session (XEP-0166 §7.1 'initiator' / 'responder')."""

    INITIATOR = "initiator"
    RESPONDER = "responder"


class Senders(enum.StrEnum):
    """XEP-0166 §7.3 'senders'."""

    BOTH = "both"
    INITIATOR = "initiator"
    NONE = "none"
    RESPONDER = "responder"


class Direction(enum.StrEnum):
    """Whether an action is one we send or one we receive (the table's key)."""

    SENT = "sent"
    RECEIVED = "received"
