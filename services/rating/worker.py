"""The rating service's worker process: outbox relay and consumers, without the API."""

from services.rating.app import build_runtime

if __name__ == "__main__":
    build_runtime().run_worker()
