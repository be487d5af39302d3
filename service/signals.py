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

pseudonyms_rekeyed = _signals.signal("pseudonyms-rekeyed", doc="""
Stored resident pseudonyms moved to a new key version (`risk-register keys rekey`). Sent with the session as sender,
`renames`: {old pseudonym: new pseudonym}, and `residents`: their incidents as counted before the change. Each
resident moves whole (every incident of theirs, in this transaction), and none was stored under the new form before.
A re-keyed pseudonym keeps its contributor seed, so nothing counted changes: receivers rename what they keep per
resident, in the same transaction.
""")
