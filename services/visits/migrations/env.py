from crmkit.migrations import run_env
from services.visits.models import Base

run_env(Base.metadata)
