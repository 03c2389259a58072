"""Visits service: visits, plans, agendas and complaints."""
