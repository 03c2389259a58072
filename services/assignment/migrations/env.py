from crmkit.migrations import run_env
from services.assignment.models import Base

run_env(Base.metadata)
