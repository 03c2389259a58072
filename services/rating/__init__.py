"""Rating and credit-limit service: grades, limits, approvals and risk."""
