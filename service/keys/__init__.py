"""Key rotation for every kind of key (`risk-register keys`): adding a version to a ring, re-keying what is stored
under older versions, retiring versions nothing needs any more, and the status of each. The README's runbook says
in which order, on one host and on many."""
