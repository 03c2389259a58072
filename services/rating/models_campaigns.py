"""Tables of rating campaigns 集中评级授信: the campaign, its phases and its progress."""

from __future__ import annotations
