"""Assignment service: org units, staff, ownership, teams and leads."""
