"""``python -m signalling --config FILE.toml``."""

from bus.messages import Process
from bus.service import main
from signalling.service import Signalling

if __name__ == "__main__":
    main(Process.SIGNALLING, Signalling)
