"""Tables: Satisfaction surveys 满意度调查: samples and responses."""

from __future__ import annotations
