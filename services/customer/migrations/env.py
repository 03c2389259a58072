from crmkit.migrations import run_env
from services.customer.models import Base

run_env(Base.metadata)
