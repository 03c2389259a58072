"""Tables: The teller identification register 柜员识别客户登记 and marketing events 营销活动."""

from __future__ import annotations
