"""Tables of the credit committee 贷审会: meetings on a limit, members, votes, minutes."""

from __future__ import annotations
