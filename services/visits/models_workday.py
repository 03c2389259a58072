"""Tables: Day plans 日工作报告 and the activity of each employee."""

from __future__ import annotations
