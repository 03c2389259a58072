"""The notify service's worker process: outbox relay and consumers, without the API."""

from services.notify.app import build_runtime

if __name__ == "__main__":
    build_runtime().run_worker()
