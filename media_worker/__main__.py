"""``python -m media_worker --config FILE.toml``."""

from bus.messages import Process
from bus.service import main
from media_worker.worker import MediaWorker

if __name__ == "__main__":
    main(Process.MEDIA, MediaWorker)
