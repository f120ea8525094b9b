"""``python -m transfer_worker --config FILE.toml``."""

from bus.messages import Process
from bus.service import main
from transfer_worker.worker import TransferWorker

if __name__ == "__main__":
    main(Process.TRANSFER, TransferWorker)
