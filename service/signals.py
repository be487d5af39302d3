"""What a domain announces, inside the transaction of the change, for a layer above it to act on (blinker signals,
as Indico does with indico/core/signals): a domain never imports one above it. create_app connects the receivers.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

incidents_changed = _signals.signal("incidents-changed", doc="""
Incidents were recorded, corrected, retracted or purged. Sent with the session of the change as sender and
`changes`: (incidents.models.Counted, +1 or -1) pairs, an incident as statistics count it before (-1) or after (+1)
the change; `municipalities` may give the municipality of locations the sender has just read. Receivers write in
the same transaction: what they do commits or rolls back with the change.
""")
